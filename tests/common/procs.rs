//! Server processes a test starts (Redis, relays) and how it talks to them.

use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A child process killed when the test lets go of it (SIGKILL: no
/// goodbye to anyone connected).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port` of loopback.
pub fn wait_port(port: u16) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on {port}");
}

/// `redis-cli -p PORT ARGS…`, its standard output.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (Debian package redis-tools, with redis-server)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A relay's `/metrics` page.
pub fn metrics_page(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}
