//! A throttling TCP proxy: a thin link on loopback, for the throttled
//! benchmarks and the adaptation tests.

use std::sync::Arc;

/// Which direction of a [`Throttle`] proxy is rate-limited.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → upstream (the client's uplink).
    Up,
    /// Upstream → client (the client's downlink).
    Down,
}

/// A TCP proxy in front of `upstream` that limits one direction to `rate`
/// bytes/s (0 = unlimited), with 4 KiB socket buffers: a thin link with
/// a few hundred milliseconds of buffering in it, as real thin links have.
pub struct Throttle {
    pub url: String,
    pub rate: Arc<std::sync::atomic::AtomicU64>,
}

pub async fn throttle(upstream: std::net::SocketAddr, direction: Direction) -> Throttle {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    socket.set_send_buffer_size(4 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let rate = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let shared = rate.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let rate = shared.clone();
            tokio::spawn(async move {
                let up = tokio::net::TcpSocket::new_v4().unwrap();
                up.set_recv_buffer_size(4 * 1024).unwrap();
                up.set_send_buffer_size(4 * 1024).unwrap();
                let Ok(server) = up.connect(upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let pump = |limited: bool| {
                    let rate = rate.clone();
                    move |mut r: tokio::net::tcp::OwnedReadHalf,
                          mut w: tokio::net::tcp::OwnedWriteHalf| async move {
                        let mut buf = vec![0u8; 1024];
                        loop {
                            let n = match r.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            let bps = rate.load(Relaxed);
                            if limited && bps > 0 {
                                tokio::time::sleep(std::time::Duration::from_secs_f64(
                                    n as f64 / bps as f64,
                                ))
                                .await;
                            }
                        }
                        let _ = w.shutdown().await;
                    }
                };
                let a = tokio::spawn(pump(direction == Direction::Up)(cr, sw));
                let b = tokio::spawn(pump(direction == Direction::Down)(sr, cw));
                let _ = tokio::join!(a, b);
            });
        }
    });
    Throttle { url, rate }
}
