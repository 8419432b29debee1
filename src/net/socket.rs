//! TCP knobs that keep queues where we can manage them.

/// Caps unsent bytes in the kernel send buffer (`TCP_NOTSENT_LOWAT`, Linux):
/// a backlog then builds in our own queues, where stale media is replaced
/// or dropped, instead of in the kernel, where it only adds delay. The
/// congestion window is unaffected, so throughput on long links is not.
pub fn limit_unsent(socket: &tokio::net::TcpStream, bytes: u32) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = socket2::SockRef::from(socket).set_tcp_notsent_lowat(bytes);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (socket, bytes);
}
