//! Terminal set-up and restore in one guard, so every exit path (return,
//! error, panic) leaves the terminal as it was; and the thread that writes
//! frames, so a stalled link never blocks the loop that reads keys.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossterm::{cursor, execute, terminal};

/// Writes each frame with one `write` on its own thread. One frame at a
/// time: while it is busy the renderer draws nothing (the next frame will
/// be newer anyway).
pub struct TtyWriter {
    frames: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    busy: Arc<AtomicBool>,
    /// How long each write took, as they finish.
    pub done: tokio::sync::mpsc::Receiver<Duration>,
    thread: Option<JoinHandle<()>>,
}

impl TtyWriter {
    pub fn spawn<W: Write + Send + 'static>(mut out: W) -> io::Result<Self> {
        let (frames, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(1);
        let (done_tx, done) = tokio::sync::mpsc::channel(4);
        let busy = Arc::new(AtomicBool::new(false));
        let flag = busy.clone();
        let thread = std::thread::Builder::new()
            .name("tty-output".into())
            .spawn(move || {
                while let Ok(frame) = rx.recv() {
                    let started = Instant::now();
                    let ok = out.write_all(&frame).and_then(|()| out.flush()).is_ok();
                    flag.store(false, Relaxed);
                    if !ok || done_tx.blocking_send(started.elapsed()).is_err() {
                        return;
                    }
                }
            })?;
        Ok(TtyWriter {
            frames: Some(frames),
            busy,
            done,
            thread: Some(thread),
        })
    }

    pub fn is_busy(&self) -> bool {
        self.busy.load(Relaxed)
    }

    /// Hands a frame to the thread; false (and nothing written) while the
    /// previous one is still being written.
    pub fn write(&self, frame: Vec<u8>) -> bool {
        let Some(frames) = &self.frames else {
            return false;
        };
        if self.busy.swap(true, Relaxed) {
            return false;
        }
        if frames.try_send(frame).is_err() {
            self.busy.store(false, Relaxed);
            return false;
        }
        true
    }

    /// Waits (up to `limit`) for the last frame to be written, and stops.
    pub fn finish(&mut self, limit: Duration) {
        self.frames = None;
        let deadline = Instant::now() + limit;
        while self.is_busy() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if !self.is_busy() {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
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

/// Takes the terminal again after a suspend (the guard still restores it
/// at the end).
pub fn reenter() -> io::Result<()> {
    terminal::enable_raw_mode()?;
    execute!(
        io::stdout(),
        terminal::EnterAlternateScreen,
        terminal::Clear(terminal::ClearType::All),
        cursor::Hide
    )
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Pixels were drawn: leaving deletes them (a terminal keeps images
/// apart from text).
static PIXELS_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn note_pixels_used() {
    PIXELS_USED.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub fn restore() {
    if PIXELS_USED.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = io::Write::write_all(&mut io::stdout(), super::graphics::DELETE_ALL);
    }
    // Shared-memory pictures the terminal never read (and the query's, in
    // a terminal that ignored it).
    super::graphics::shm_sweep();
    let _ = execute!(
        io::stdout(),
        crossterm::style::ResetColor,
        crossterm::style::SetAttribute(crossterm::style::Attribute::Reset),
        cursor::Show,
        terminal::LeaveAlternateScreen
    );
    let _ = terminal::disable_raw_mode();
    discard_input();
}

/// Drops input the terminal sent that nobody read (late answers to our
/// queries), so it doesn't land at the shell prompt.
fn discard_input() {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: tcflush on our own stdin; harmless if it isn't a tty.
        unsafe {
            libc::tcflush(io::stdin().as_raw_fd(), libc::TCIFLUSH);
        }
    }
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
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Shared {
        fn write(&mut self, d: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(d.to_vec());
            Ok(d.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn one_frame_at_a_time_each_in_one_write() {
        let sink = Shared::default();
        let mut w = TtyWriter::spawn(sink.clone()).unwrap();
        assert!(w.write(b"frame one".to_vec()));
        w.done.recv().await.unwrap();
        assert!(!w.is_busy());
        assert!(w.write(b"frame two".to_vec()));
        w.done.recv().await.unwrap();
        w.finish(Duration::from_secs(1));
        assert!(!w.write(b"after".to_vec()));
        assert_eq!(
            *sink.0.lock().unwrap(),
            vec![b"frame one".to_vec(), b"frame two".to_vec()]
        );
    }

    #[test]
    fn a_busy_writer_refuses_the_next_frame() {
        struct Slow;
        impl Write for Slow {
            fn write(&mut self, d: &[u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(200));
                Ok(d.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let w = TtyWriter::spawn(Slow).unwrap();
        assert!(w.write(vec![1]));
        assert!(!w.write(vec![2]), "second frame while the first is written");
    }
}
