//! A link emulator as a TCP proxy: a rate and a one-way delay per
//! direction, and a bounded queue in front of the rate (a router's buffer:
//! when it is full the proxy stops reading, so TCP pushes back on the
//! sender, as on a real thin link). This machine's kernel has no `netem`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One direction of the link.
#[derive(Debug, Clone, Copy)]
pub struct LinkSpec {
    /// Bytes per second; 0 = unlimited.
    pub rate: f64,
    pub delay: Duration,
    /// Each chunk's delay varies by up to ± this (uniformly), in order
    /// (like TCP over a jittery path: late bytes hold up later ones).
    pub jitter: Duration,
    /// Bytes the queue in front of the rate holds.
    pub queue: usize,
    /// The receive buffer of the proxy's socket this direction reads
    /// from (None: the kernel's default). Small, it makes the sender's
    /// own socket feel the bottleneck, as a real one does, instead of the
    /// proxy taking everything at once.
    pub rcvbuf: Option<usize>,
}

impl LinkSpec {
    pub fn new(rate: f64, delay: Duration) -> Self {
        // About 200 ms of buffer at the link rate (at least 16 KiB): a
        // typical access link's queue.
        let queue = if rate > 0.0 {
            ((rate * 0.2) as usize).max(16 * 1024)
        } else {
            256 * 1024
        };
        LinkSpec {
            rate,
            delay,
            jitter: Duration::ZERO,
            queue,
            rcvbuf: None,
        }
    }

    /// A receive buffer of `bytes` on the side this direction reads from.
    pub fn with_rcvbuf(mut self, bytes: usize) -> Self {
        self.rcvbuf = Some(bytes);
        self
    }

    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }
}

/// A running proxy: connect to `addr` to reach `upstream` over the link.
pub struct Shaper {
    pub addr: SocketAddr,
}

impl Shaper {
    /// `down` shapes upstream → client, `up` client → upstream.
    pub fn start(upstream: SocketAddr, down: LinkSpec, up: LinkSpec) -> std::io::Result<Shaper> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::Builder::new()
            .name("shaper".into())
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    let Ok(server) = connect_with_rcvbuf(upstream, down.rcvbuf) else {
                        continue;
                    };
                    if let Some(bytes) = up.rcvbuf {
                        let _ = socket2::SockRef::from(&client).set_recv_buffer_size(bytes);
                    }
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                        continue;
                    };
                    pump(server, c2, down);
                    pump(client, s2, up);
                }
            })?;
        Ok(Shaper { addr })
    }
}

/// Connects to `to`, with the receive buffer set before the handshake (so
/// the window it advertises is small from the start).
fn connect_with_rcvbuf(to: SocketAddr, rcvbuf: Option<usize>) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(bytes) = rcvbuf {
        socket.set_recv_buffer_size(bytes)?;
    }
    socket.connect(&to.into())?;
    Ok(socket.into())
}

struct Line {
    /// Bytes waiting for the rate, and whether the source closed.
    queue: VecDeque<u8>,
    closed: bool,
}

/// Moves bytes from `from` to `to` through one direction of the link.
fn pump(mut from: TcpStream, mut to: TcpStream, spec: LinkSpec) {
    let line = Arc::new((
        Mutex::new(Line {
            queue: VecDeque::new(),
            closed: false,
        }),
        Condvar::new(),
    ));
    let reader_line = line.clone();
    let _ = std::thread::Builder::new()
        .name("shaper-in".into())
        .spawn(move || {
            let (lock, cv) = &*reader_line;
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                // Full queue: stop reading (TCP backpressure).
                {
                    let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while g.queue.len() >= spec.queue {
                        g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
                    }
                }
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    g.closed = true;
                    cv.notify_all();
                    return;
                }
                g.queue.extend(&buf[..n]);
                cv.notify_all();
            }
        });
    let _ = std::thread::Builder::new()
        .name("shaper-out".into())
        .spawn(move || {
            let (lock, cv) = &*line;
            // In flight on the wire: (arrival time, bytes).
            let mut wire: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
            let mut free_at = Instant::now();
            loop {
                let now = Instant::now();
                // Put queued bytes on the wire as the rate allows.
                let closed = {
                    let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
                    while !g.queue.is_empty() && free_at <= now {
                        let n = g.queue.len().min(1024);
                        let chunk: Vec<u8> = g.queue.drain(..n).collect();
                        free_at = free_at.max(now)
                            + if spec.rate > 0.0 {
                                Duration::from_secs_f64(n as f64 / spec.rate)
                            } else {
                                Duration::ZERO
                            };
                        let spread = spec.jitter.as_secs_f64()
                            * (2.0 * crate::net::backoff::random_unit() - 1.0);
                        let delay =
                            Duration::from_secs_f64((spec.delay.as_secs_f64() + spread).max(0.0));
                        // In order: a chunk can't overtake the one before it.
                        let arrival = (free_at + delay).max(wire.back().map_or(now, |(at, _)| *at));
                        wire.push_back((arrival, chunk));
                    }
                    cv.notify_all();
                    g.closed && g.queue.is_empty()
                };
                while wire.front().is_some_and(|(at, _)| *at <= now) {
                    let (_, bytes) = wire.pop_front().expect("front exists");
                    if to.write_all(&bytes).is_err() {
                        return;
                    }
                }
                if closed && wire.is_empty() {
                    let _ = to.shutdown(std::net::Shutdown::Write);
                    return;
                }
                // Sleep until the next event, at most 1 ms.
                let next = wire
                    .front()
                    .map(|(at, _)| *at)
                    .into_iter()
                    .chain(std::iter::once(free_at))
                    .filter(|t| *t > now)
                    .min()
                    .unwrap_or(now + Duration::from_millis(1));
                let wait = next
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(1));
                let g = lock.lock().unwrap_or_else(|e| e.into_inner());
                if g.queue.is_empty() && wire.is_empty() && !g.closed {
                    // Idle: wait for bytes.
                    let _ = cv.wait_timeout(g, Duration::from_millis(50));
                } else {
                    drop(g);
                    std::thread::sleep(wait.max(Duration::from_micros(200)));
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_delay_are_applied() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 4096];
            // Sends 50 KB as soon as asked.
            let _ = s.read(&mut buf);
            s.write_all(&vec![7u8; 50_000]).unwrap();
        });
        let rate = 100_000.0;
        let shaper = Shaper::start(
            upstream,
            LinkSpec::new(rate, Duration::from_millis(30)),
            LinkSpec::new(0.0, Duration::from_millis(30)),
        )
        .unwrap();
        let mut c = TcpStream::connect(shaper.addr).unwrap();
        let t0 = Instant::now();
        c.write_all(b"go").unwrap();
        let mut got = 0;
        let mut first = None;
        let mut buf = [0u8; 8192];
        while got < 50_000 {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0);
            first.get_or_insert(t0.elapsed());
            got += n;
        }
        let total = t0.elapsed();
        // Up 30 ms, down 30 ms, then 0.5 s at 100 kB/s.
        assert!(first.unwrap() >= Duration::from_millis(60), "{first:?}");
        assert!(
            total >= Duration::from_millis(540) && total <= Duration::from_millis(1200),
            "{total:?}"
        );
    }
}
