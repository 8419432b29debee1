//! The relay's settings: one clap struct shared by `streamflow-relay` and
//! `streamflow relay`, so both programs document and accept the same flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::protocol::Limits;

/// Forward opaque, end-to-end encrypted blobs between the members of each room.
///
/// The relay never holds a key: it sees room ids, relay-assigned peer ids and
/// base64 blobs it cannot read. It assigns peer ids, announces joins and leaves,
/// and keeps serving when clients are slow or hostile.
#[derive(Debug, Clone, Args)]
pub struct RelayConfig {
    /// Address to accept WebSocket clients on (ws://, or wss:// with --tls-cert/--tls-key).
    #[arg(long, default_value = "127.0.0.1:8787", env = "STREAMFLOW_LISTEN")]
    pub listen: SocketAddr,

    /// Serve GET /healthz and GET /metrics (Prometheus text) on this address
    /// instead of the listen port.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// PEM certificate chain; with --tls-key the relay speaks wss:// only.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Largest client message accepted, in bytes (JSON text as sent).
    #[arg(long, default_value_t = 1 << 20, value_parser = at_least_one, value_name = "BYTES")]
    pub max_message_bytes: usize,

    /// Largest control message (handshakes, keys, chat; real ones are under
    /// 1 KiB). Suffixes KiB, MiB.
    #[arg(long, default_value = "64KiB", value_parser = crate::memory::parse_size, value_name = "SIZE")]
    pub max_control_bytes: usize,

    /// Bytes per second one connection may send, sustained; bursts up to
    /// twice --max-message-bytes. Past it the relay reads that connection
    /// more slowly (TCP pushes back on the sender) and drops nothing. Far
    /// above any call (a video stream is ~0.5 Mbit/s), it keeps bulk
    /// senders from crowding out everyone else's calls. Suffixes KiB, MiB.
    #[arg(long, default_value = "4MiB", value_parser = crate::memory::parse_size, value_name = "SIZE")]
    pub max_bytes_per_sec: usize,

    /// Memory the relay may hold for clients in all (buffers, unfinished
    /// messages, queued output). Near it new connections are refused and
    /// the biggest offenders are disconnected, so calls keep flowing.
    /// Suffixes KiB, MiB, GiB.
    #[arg(long, default_value = "512MiB", value_parser = crate::memory::parse_size, value_name = "SIZE")]
    pub max_memory: usize,

    /// A message must arrive whole within this long of its first byte, or
    /// the connection is closed (a slow or never-finished message pins
    /// memory).
    #[arg(long, default_value = "10s", value_parser = parse_interval, value_name = "DURATION")]
    pub message_deadline: Duration,

    /// Most peers in one room; one more gets `room_full`.
    #[arg(long, default_value_t = 64, value_parser = at_least_one, value_name = "N")]
    pub max_peers_per_room: usize,

    /// Most rooms at once; a join that would open one more gets `too_many_rooms`.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one, value_name = "N")]
    pub max_rooms: usize,

    /// Sustained messages per second per connection (directed sends included).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub rate_per_sec: u32,

    /// Messages a connection may send at once above the sustained rate.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub rate_burst: u32,

    /// Most simultaneous connections from one IP address (default: no per-IP limit).
    #[arg(long, value_parser = at_least_one, value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Most simultaneous connections in all; further ones are closed at once
    /// (/healthz and /metrics still answer). Also bounded by the open-file
    /// limit, which the relay raises to its maximum at start.
    #[arg(long, default_value_t = 100_000, value_parser = at_least_one, value_name = "N")]
    pub max_connections: usize,

    /// Send a WebSocket ping this often (e.g. 20s, 500ms; at least 10ms).
    #[arg(long, default_value = "20s", value_parser = parse_interval, value_name = "DURATION")]
    pub ping_interval: Duration,

    /// Drop a peer that sent nothing (not even a pong) for this long, announced
    /// as `peer_left` with reason `timeout`.
    #[arg(long, default_value = "60s", value_parser = parse_interval, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// Media frames queued per receiver before its oldest media from the same
    /// sender is dropped (latest frame wins). At least 32.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(32..), value_name = "N")]
    pub media_queue_frames: u32,

    /// Media bytes queued per receiver before dropping (at most 8 MiB).
    #[arg(long, default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1..=(8 << 20)), value_name = "BYTES")]
    pub media_queue_bytes: u64,

    /// Control messages queued per receiver. One member may hold a quarter of
    /// them at another (more is refused, and the sender told); a receiver
    /// that can't take the relay's own (presence) is disconnected. Default
    /// and minimum: 4 x --max-peers-per-room.
    #[arg(long, value_name = "N")]
    pub control_queue_messages: Option<usize>,

    /// Control bytes queued per receiver. One member may hold
    /// 4 x --max-control-bytes of them at another (more is refused).
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES")]
    pub control_queue_bytes: usize,

    /// Unsent bytes the kernel may hold per client socket (TCP_NOTSENT_LOWAT).
    /// Kept small so a slow receiver's backlog sits in the relay's queue,
    /// where stale media is dropped, rather than in the kernel, where it only
    /// adds delay.
    #[arg(long, default_value_t = 4 << 10, value_name = "BYTES")]
    pub socket_unsent_limit: u32,

    /// Media that waited this long in a receiver's queue is dropped instead
    /// of sent: late video is worse than none.
    #[arg(long, default_value = "300ms", value_parser = parse_duration, value_name = "DURATION")]
    pub media_max_age: Duration,

    /// Redis URL (redis://HOST:PORT): relays sharing one Redis serve the same
    /// rooms. Without it the relay is a single process.
    #[arg(long, env = "STREAMFLOW_REDIS_URL", value_name = "URL")]
    pub redis: Option<String>,

    /// With --redis: a relay that stops refreshing its presence for this long
    /// is considered crashed, and its peers are announced as left.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub redis_presence_ttl: Duration,

    /// Protocol violations (bad messages, rate-limit episodes, ...) tolerated
    /// within 30 s before the connection is closed (and its address must
    /// wait a few seconds before connecting again).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_strikes: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: RelayConfig,
        }
        Wrapper::parse_from(["relay"]).config
    }
}

impl RelayConfig {
    /// Defaults, on a free port of 127.0.0.1: the embedded relay of
    /// `demo`, the benchmarks and the tests.
    pub fn loopback() -> Self {
        RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Default::default()
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.max_message_bytes,
            max_peers_per_room: self.max_peers_per_room,
            rate_per_sec: self.rate_per_sec,
            rate_burst: self.rate_burst,
            ping_interval_ms: self.ping_interval.as_millis() as u64,
            idle_timeout_ms: self.idle_timeout.as_millis() as u64,
        }
    }

    pub fn control_queue_messages(&self) -> usize {
        let floor = 4 * self.max_peers_per_room;
        self.control_queue_messages.unwrap_or(floor).max(floor)
    }
}

/// A count of at least 1 (0 would refuse everyone, or leak).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// A timer period: a duration of at least 10 ms (shorter ones would spin).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(10) {
        return Err(format!("{text:?} is too short: at least 10ms"));
    }
    Ok(d)
}

/// Parses `250ms`, `20s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 20s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?}: use ms, s or m")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err("duration must be positive".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = RelayConfig::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(c.max_message_bytes, 1 << 20);
        assert_eq!(c.max_peers_per_room, 64);
        assert_eq!(c.max_rooms, 10_000);
        assert_eq!((c.rate_per_sec, c.rate_burst), (200, 400));
        assert_eq!(c.max_connections_per_ip, None);
        assert_eq!(c.ping_interval, Duration::from_secs(20));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert!(c.media_queue_frames >= 32 && c.media_queue_bytes <= 8 << 20);
        assert_eq!(c.control_queue_messages(), 256);
        assert_eq!(c.max_memory, 512 << 20);
        assert_eq!(c.max_control_bytes, 64 << 10);
        assert_eq!(c.max_bytes_per_sec, 4 << 20);
        assert_eq!(c.message_deadline, Duration::from_secs(10));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_interval("0.0001ms").is_err());
        assert_eq!(parse_interval("10ms"), Ok(Duration::from_millis(10)));
    }

    #[test]
    fn nonsense_values_are_refused_at_start() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: RelayConfig,
        }
        let parse = |args: &[&str]| {
            Wrapper::try_parse_from(std::iter::once("relay").chain(args.iter().copied()))
                .map(|_| ())
        };
        assert!(parse(&["--ping-interval", "0.0001ms"]).is_err());
        assert!(parse(&["--max-peers-per-room", "0"]).is_err());
        assert!(parse(&["--max-rooms", "0"]).is_err());
        assert!(parse(&["--rate-per-sec", "0"]).is_err());
        assert!(parse(&["--max-memory", "0"]).is_err());
        assert!(parse(&["--max-memory", "1GiB", "--max-control-bytes", "16KiB"]).is_ok());
    }
}
