//! Terminal set-up and restore in one guard, so every exit path (return,
//! error, panic) leaves the terminal as it was. And the writer that turns each
//! frame into a single synchronized write.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossterm::{cursor, execute, terminal};

/// DEC 2026 synchronized output: the terminal shows the frame at once, not
/// half-drawn. Terminals without it ignore the private mode.
const BEGIN_SYNC: &[u8] = b"\x1b[?2026h";
const END_SYNC: &[u8] = b"\x1b[?2026l";

/// Buffers a whole frame and writes it with one `write` on `flush`,
/// wrapped in synchronized-output markers. Counts bytes for the status line
/// and the render bench.
pub struct FrameWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    pub written: Arc<AtomicU64>,
    sync: bool,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(inner: W, sync: bool) -> Self {
        FrameWriter {
            inner,
            buf: Vec::with_capacity(256 * 1024),
            written: Arc::new(AtomicU64::new(0)),
            sync,
        }
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return self.inner.flush();
        }
        let mut frame = Vec::with_capacity(self.buf.len() + 16);
        if self.sync {
            frame.extend_from_slice(BEGIN_SYNC);
        }
        frame.append(&mut self.buf);
        if self.sync {
            frame.extend_from_slice(END_SYNC);
        }
        self.written.fetch_add(frame.len() as u64, Relaxed);
        self.inner.write_all(&frame)?;
        self.inner.flush()
    }
}

/// Raw mode + alternate screen + hidden cursor while alive.
pub struct TerminalGuard;

impl TerminalGuard {
    pub fn enter() -> io::Result<Self> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        if let Err(e) = execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide) {
            restore();
            return Err(e);
        }
        Ok(TerminalGuard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

pub fn restore() {
    let _ = execute!(
        io::stdout(),
        crossterm::style::ResetColor,
        cursor::Show,
        terminal::LeaveAlternateScreen
    );
    let _ = terminal::disable_raw_mode();
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_write_per_flush_with_sync_markers() {
        struct Counting(Vec<usize>, Vec<u8>);
        impl Write for Counting {
            fn write(&mut self, d: &[u8]) -> io::Result<usize> {
                self.0.push(d.len());
                self.1.extend_from_slice(d);
                Ok(d.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut w = FrameWriter::new(Counting(vec![], vec![]), true);
        w.write_all(b"abc").unwrap();
        w.write_all(b"def").unwrap();
        w.flush().unwrap();
        w.flush().unwrap();
        assert_eq!(w.inner.0.len(), 1);
        assert_eq!(w.inner.1, b"\x1b[?2026habcdef\x1b[?2026l");
        assert_eq!(w.written.load(Relaxed), 22);
    }
}
