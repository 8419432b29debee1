//! Terminal input: keys, and the terminal's answers to our queries.
//!
//! crossterm's reader hides device-attribute replies from `event::read()`
//! and keeps them queued forever, and the renderer needs those replies: they
//! are its acknowledgements (see [`super::flow`]). So the TUI reads stdin
//! itself and decodes xterm-style input here: a small, total decoder from
//! bytes to [`Input`]s that never panics and never buffers without bound.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Something the terminal sent us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeyEvent),
    /// The answer to a DA1 query (`CSI c` → `CSI ? … c`): the terminal has
    /// processed everything we wrote before the query. `sixel`: it lists
    /// attribute 4 (sixel graphics).
    DeviceAttributes {
        sixel: bool,
    },
    /// The answer to XTSMGRAPHICS' colour-register query
    /// ([`super::sixel::REGISTERS_QUERY`]): how many a sixel picture may use.
    ColourRegisters(u16),
    /// The answer to the kitty graphics query ([`super::graphics::QUERY`]):
    /// whether the terminal takes images.
    Graphics {
        ok: bool,
        /// The answer to the shared-memory query
        /// ([`super::graphics::shm_query`]) rather than the plain one.
        shared: bool,
    },
}

/// An input and when it was read (answers are timed by their arrival, not
/// by when the busy UI loop gets to them).
#[derive(Debug, Clone)]
pub struct Timed {
    pub input: Input,
    pub at: std::time::Instant,
}

/// Longest escape sequence we keep waiting for; anything longer is junk.
const MAX_SEQUENCE: usize = 256;

/// Incremental decoder: feed it bytes as they arrive, take the inputs out.
#[derive(Default)]
pub struct InputDecoder {
    pending: Vec<u8>,
}

impl InputDecoder {
    /// Decodes what `bytes` completes. An escape sequence cut off at the end
    /// stays pending until more bytes arrive or [`InputDecoder::flush`].
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Input>) {
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while start < self.pending.len() {
            match decode_one(&self.pending[start..]) {
                Step::Done(used, input) => {
                    out.extend(input);
                    start += used;
                }
                Step::NeedMore if self.pending.len() - start <= MAX_SEQUENCE => break,
                // Too long to be a real sequence: junk, dropped whole.
                Step::NeedMore => start = self.pending.len(),
            }
        }
        self.pending.drain(..start);
    }

    /// True when a sequence is waiting for its end (a lone Esc, so far).
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// No more bytes came: what is pending was typed, not a sequence (a
    /// lone Esc, or Esc then a key: Alt+key).
    pub fn flush(&mut self, out: &mut Vec<Input>) {
        let pending = std::mem::take(&mut self.pending);
        let mut rest = &pending[..];
        while let Some((&first, tail)) = rest.split_first() {
            if first == 0x1b {
                out.push(key(KeyCode::Esc, KeyModifiers::NONE));
                rest = tail;
                continue;
            }
            match decode_one(rest) {
                Step::Done(used, input) => {
                    out.extend(input);
                    rest = &rest[used..];
                }
                Step::NeedMore => break, // a cut UTF-8 sequence: drop it
            }
        }
    }
}

enum Step {
    /// Bytes used, and the input they make (if any: junk makes none).
    Done(usize, Option<Input>),
    NeedMore,
}

fn key(code: KeyCode, modifiers: KeyModifiers) -> Input {
    Input::Key(KeyEvent::new(code, modifiers))
}

fn decode_one(buf: &[u8]) -> Step {
    let b = buf[0];
    match b {
        0x1b => decode_escape(buf),
        b'\r' | b'\n' => Step::Done(1, Some(key(KeyCode::Enter, KeyModifiers::NONE))),
        b'\t' => Step::Done(1, Some(key(KeyCode::Tab, KeyModifiers::NONE))),
        0x7f | 0x08 => Step::Done(1, Some(key(KeyCode::Backspace, KeyModifiers::NONE))),
        0x00 => Step::Done(1, Some(key(KeyCode::Char(' '), KeyModifiers::CONTROL))),
        0x01..=0x1a => Step::Done(
            1,
            Some(key(
                KeyCode::Char((b - 1 + b'a') as char),
                KeyModifiers::CONTROL,
            )),
        ),
        0x1c..=0x1f => Step::Done(1, None),
        _ => decode_utf8(buf),
    }
}

fn decode_utf8(buf: &[u8]) -> Step {
    let len = match buf[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Step::Done(1, None), // not a leading byte
    };
    if buf.len() < len {
        return Step::NeedMore;
    }
    match std::str::from_utf8(&buf[..len])
        .ok()
        .and_then(|s| s.chars().next())
    {
        Some(c) => Step::Done(len, Some(key(KeyCode::Char(c), KeyModifiers::NONE))),
        None => Step::Done(1, None),
    }
}

fn decode_escape(buf: &[u8]) -> Step {
    let Some(&second) = buf.get(1) else {
        return Step::NeedMore;
    };
    match second {
        b'[' => decode_csi(buf),
        b'_' => decode_apc(buf),
        b'O' => match buf.get(2) {
            None => Step::NeedMore,
            Some(&f) => Step::Done(3, ss3_key(f)),
        },
        0x1b => Step::Done(1, Some(key(KeyCode::Esc, KeyModifiers::NONE))),
        _ => match decode_one(&buf[1..]) {
            // Esc then a key: Alt+key.
            Step::Done(used, Some(Input::Key(mut k))) => {
                k.modifiers |= KeyModifiers::ALT;
                Step::Done(1 + used, Some(Input::Key(k)))
            }
            Step::Done(used, other) => Step::Done(1 + used, other),
            Step::NeedMore => Step::NeedMore,
        },
    }
}

/// `ESC _ body ESC \` (an application program command): only the answer
/// to our graphics query means anything; any other is consumed whole.
fn decode_apc(buf: &[u8]) -> Step {
    let body = &buf[2..];
    let Some(end) = body.windows(2).position(|w| w == b"\x1b\\") else {
        return Step::NeedMore;
    };
    let answer = body[..end].strip_prefix(b"G").and_then(|rest| {
        let (keys, message) = match rest.iter().position(|b| *b == b';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &b""[..]),
        };
        let has = |id: &str| keys.split(|b| *b == b',').any(|k| k == id.as_bytes());
        let ok = message == b"OK";
        if has(super::graphics::QUERY_ID) {
            Some(Input::Graphics { ok, shared: false })
        } else if has(super::graphics::SHM_QUERY_ID) {
            Some(Input::Graphics { ok, shared: true })
        } else {
            None
        }
    });
    Step::Done(2 + end + 2, answer)
}

fn ss3_key(f: u8) -> Option<Input> {
    let code = match f {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'P'..=b'S' => KeyCode::F(1 + f - b'P'),
        _ => return None,
    };
    Some(key(code, KeyModifiers::NONE))
}

/// `ESC [ params intermediates final` (ECMA-48): parameter bytes 0x30–0x3f,
/// intermediates 0x20–0x2f, the final byte 0x40–0x7e.
fn decode_csi(buf: &[u8]) -> Step {
    let body = &buf[2..];
    let Some(end) = body.iter().position(|b| !(0x20..=0x3f).contains(b)) else {
        return Step::NeedMore;
    };
    let final_byte = body[end];
    let used = 2 + end + 1;
    if !(0x40..=0x7e).contains(&final_byte) {
        // Not a CSI sequence after all: drop the introducer.
        return Step::Done(2, None);
    }
    let params = &body[..end];
    Step::Done(used, csi_input(params, final_byte))
}

fn csi_input(params: &[u8], final_byte: u8) -> Option<Input> {
    if let Some(private) = params.strip_prefix(b"?") {
        let fields: Vec<Option<u16>> = std::str::from_utf8(private)
            .unwrap_or_default()
            .split(';')
            .map(|p| p.parse().ok())
            .collect();
        return match final_byte {
            // The first field is the terminal class; the rest attributes.
            b'c' => Some(Input::DeviceAttributes {
                sixel: fields.iter().skip(1).any(|f| *f == Some(4)),
            }),
            // Item 1 (colour registers), status 0 (success), the count.
            b'S' => match fields[..] {
                [Some(1), Some(0), Some(n), ..] => Some(Input::ColourRegisters(n)),
                _ => None,
            },
            _ => None,
        };
    }
    let text = std::str::from_utf8(params).ok()?;
    let mut numbers = text.split(';').map(|p| p.parse::<u16>().ok());
    let first = numbers.next().flatten();
    let modifiers = numbers
        .next()
        .flatten()
        .map(modifier_bits)
        .unwrap_or(KeyModifiers::NONE);
    let code = match final_byte {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'Z' => return Some(key(KeyCode::BackTab, KeyModifiers::SHIFT)),
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'S' => KeyCode::F(4),
        b'~' => match first? {
            1 | 7 => KeyCode::Home,
            2 => KeyCode::Insert,
            3 => KeyCode::Delete,
            4 | 8 => KeyCode::End,
            5 => KeyCode::PageUp,
            6 => KeyCode::PageDown,
            n @ 11..=15 => KeyCode::F((n - 10) as u8),
            n @ 17..=21 => KeyCode::F((n - 11) as u8),
            n @ 23..=24 => KeyCode::F((n - 12) as u8),
            _ => return None,
        },
        // Cursor position reports, focus events, anything else: not keys.
        _ => return None,
    };
    Some(key(code, modifiers))
}

/// xterm's modifier parameter: 1 + (shift 1 | alt 2 | ctrl 4).
fn modifier_bits(p: u16) -> KeyModifiers {
    let bits = p.saturating_sub(1);
    let mut m = KeyModifiers::NONE;
    if bits & 1 != 0 {
        m |= KeyModifiers::SHIFT;
    }
    if bits & 2 != 0 {
        m |= KeyModifiers::ALT;
    }
    if bits & 4 != 0 {
        m |= KeyModifiers::CONTROL;
    }
    m
}

/// Reads stdin on its own thread (a blocking read can't be cancelled, so
/// the thread polls with a short timeout and checks `stop`) and sends what
/// it decodes. Ends when `stop` is set, the receiver is gone or stdin closes.
#[cfg(unix)]
pub fn spawn_reader(
    tx: tokio::sync::mpsc::Sender<Timed>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::Ordering::Relaxed;
    /// How long an unfinished escape sequence waits for the rest: terminals
    /// send a sequence in one write, so a lone Esc is known quickly even
    /// over SSH.
    const ESC_WAIT_MS: i32 = 30;
    let fd = std::io::stdin().as_raw_fd();
    std::thread::Builder::new()
        .name("tty-input".into())
        .spawn(move || {
            let mut decoder = InputDecoder::default();
            let mut buf = [0u8; 4096];
            let mut inputs = Vec::new();
            while !stop.load(Relaxed) {
                let timeout = if decoder.has_pending() {
                    ESC_WAIT_MS
                } else {
                    100
                };
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                let ready = unsafe { libc::poll(&mut pfd, 1, timeout) };
                if ready < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return;
                }
                if ready == 0 {
                    decoder.flush(&mut inputs);
                } else {
                    // SAFETY: reads into a buffer we own, at most its length.
                    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                    if n == 0 {
                        return; // stdin closed
                    }
                    if n < 0 {
                        let e = std::io::Error::last_os_error();
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                        ) {
                            continue;
                        }
                        return;
                    }
                    decoder.feed(&buf[..n as usize], &mut inputs);
                }
                let at = std::time::Instant::now();
                for input in inputs.drain(..) {
                    if tx.blocking_send(Timed { input, at }).is_err() {
                        return;
                    }
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Vec<Input> {
        let mut d = InputDecoder::default();
        let mut out = Vec::new();
        for c in chunks {
            d.feed(c, &mut out);
        }
        d.flush(&mut out);
        out
    }

    fn k(code: KeyCode) -> Input {
        key(code, KeyModifiers::NONE)
    }

    #[test]
    fn printable_utf8_and_control_keys() {
        assert_eq!(
            decode(&[b"a\xc3\xa9\r\t\x7f\x03"]),
            vec![
                k(KeyCode::Char('a')),
                k(KeyCode::Char('é')),
                k(KeyCode::Enter),
                k(KeyCode::Tab),
                k(KeyCode::Backspace),
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
            ]
        );
    }

    /// Kitty's answer to the graphics query, split anywhere, then its
    /// device attributes; an error answer and anyone else's APC type
    /// nothing.
    #[test]
    fn graphics_answers_are_decoded_and_never_typed() {
        assert_eq!(
            decode(&[b"\x1b_Gi=3", b"1;OK\x1b", b"\\\x1b[?62;c"]),
            vec![
                Input::Graphics {
                    ok: true,
                    shared: false
                },
                Input::DeviceAttributes { sixel: false }
            ]
        );
        assert_eq!(
            decode(&[b"\x1b_Gi=31;ENOTSUPPORTED:no images here\x1b\\x"]),
            vec![
                Input::Graphics {
                    ok: false,
                    shared: false
                },
                k(KeyCode::Char('x'))
            ]
        );
        // The shared-memory query's answers: OK here, an error elsewhere.
        assert_eq!(
            decode(&[b"\x1b_Gi=32;OK\x1b\\\x1b_Gi=32;ENOENT:no such file\x1b\\"]),
            vec![
                Input::Graphics {
                    ok: true,
                    shared: true
                },
                Input::Graphics {
                    ok: false,
                    shared: true
                }
            ]
        );
        assert_eq!(
            decode(&[b"\x1b_Gi=7;OK\x1b\\\x1b_other\x1b\\y"]),
            vec![k(KeyCode::Char('y'))]
        );
    }

    #[test]
    fn sequences_split_across_reads() {
        assert_eq!(
            decode(&[b"\x1b", b"[", b"D", b"\xe2\x96", b"\x80"]),
            vec![k(KeyCode::Left), k(KeyCode::Char('▀'))]
        );
    }

    #[test]
    fn device_attribute_replies_are_not_keys() {
        // xterm, tmux and the VT220 answers, amid typing.
        assert_eq!(
            decode(&[b"x\x1b[?62;22c\x1b[?1;2cy\x1b[?6c"]),
            vec![
                k(KeyCode::Char('x')),
                Input::DeviceAttributes { sixel: false },
                Input::DeviceAttributes { sixel: false },
                k(KeyCode::Char('y')),
                Input::DeviceAttributes { sixel: false },
            ]
        );
        // xterm -ti vt340: colour registers, then attributes with sixel (4);
        // a VT220's "1;2" is not sixel, nor is a failed register answer.
        assert_eq!(
            decode(&[b"\x1b[?1;0;1024S\x1b[?2;0;480;312S\x1b[?63;1;2;4;6;9;15;16;22;28c"]),
            vec![
                Input::ColourRegisters(1024),
                Input::DeviceAttributes { sixel: true },
            ]
        );
        assert_eq!(
            decode(&[b"\x1b[?4;2c\x1b[?1;3;0S"]),
            vec![Input::DeviceAttributes { sixel: false }]
        );
        // A cursor position report and focus events are dropped, not typed.
        assert_eq!(decode(&[b"\x1b[12;40R\x1b[I\x1b[O"]), vec![]);
    }

    #[test]
    fn editing_and_function_keys() {
        assert_eq!(
            decode(&[b"\x1b[H\x1b[F\x1b[3~\x1b[5~\x1b[6~\x1bOA\x1b[1;5C\x1b[Z\x1b[15~"]),
            vec![
                k(KeyCode::Home),
                k(KeyCode::End),
                k(KeyCode::Delete),
                k(KeyCode::PageUp),
                k(KeyCode::PageDown),
                k(KeyCode::Up),
                key(KeyCode::Right, KeyModifiers::CONTROL),
                key(KeyCode::BackTab, KeyModifiers::SHIFT),
                k(KeyCode::F(5)),
            ]
        );
    }

    #[test]
    fn lone_escape_and_alt() {
        assert_eq!(decode(&[b"\x1b"]), vec![k(KeyCode::Esc)]);
        assert_eq!(
            decode(&[b"\x1bq"]),
            vec![key(KeyCode::Char('q'), KeyModifiers::ALT)]
        );
        assert_eq!(
            decode(&[b"\x1b\x1b"]),
            vec![k(KeyCode::Esc), k(KeyCode::Esc)]
        );
    }

    #[test]
    fn junk_never_panics_or_grows() {
        let mut d = InputDecoder::default();
        let mut out = Vec::new();
        // An endless CSI parameter list is dropped, not buffered.
        let mut junk = b"\x1b[".to_vec();
        junk.extend(std::iter::repeat_n(b'1', 10_000));
        d.feed(&junk, &mut out);
        assert!(d.pending.len() <= MAX_SEQUENCE);
        d.feed(b"z", &mut out);
        for b in 0..=255u8 {
            d.feed(&[0x1b, b'[', b, 0xff, 0x1b, b'O', b], &mut out);
        }
        d.flush(&mut out);
        assert!(d.pending.is_empty());
    }
}
