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
    /// Address to accept WebSocket clients on (ws://, or wss:// with
    /// --tls-cert/--tls-key): IP:PORT, [IPv6]:PORT, HOST:PORT (a name,
    /// resolved at start), :PORT or PORT (127.0.0.1 with that port), or an
    /// IP or host alone (port 8787). 0.0.0.0:8787 takes calls from the
    /// network; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8787", env = "STREAMFLOW_LISTEN", value_parser = parse_listen, value_name = "ADDR")]
    pub listen: SocketAddr,

    /// Serve GET /healthz and GET /metrics (Prometheus text) on this address
    /// instead of the listen port; same forms as --listen (e.g. :9100).
    #[arg(long, value_parser = parse_listen, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// PEM certificate chain; with --tls-key the relay speaks wss:// only.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Largest client message accepted (JSON text as sent). Every size flag
    /// takes bytes or KiB, MiB, GiB (K/M/G alike, any case), e.g. 1MiB.
    #[arg(long, default_value = "1MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_message_bytes: usize,

    /// Largest control message (handshakes, keys, chat; real ones are under
    /// 1 KiB).
    #[arg(long, default_value = "64KiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_control_bytes: usize,

    /// Bytes per second one connection may send, sustained; bursts up to
    /// twice --max-message-bytes. Past it the relay reads that connection
    /// more slowly (TCP pushes back on the sender) and drops nothing. Far
    /// above any call (a video stream is ~0.5 Mbit/s), it keeps bulk
    /// senders from crowding out everyone else's calls.
    #[arg(long, default_value = "4MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_bytes_per_sec: usize,

    /// Memory the relay may hold for clients in all (buffers, unfinished
    /// messages, queued output). Near it new connections are refused and
    /// the biggest offenders are disconnected, so calls keep flowing.
    #[arg(long, default_value = "512MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_memory: usize,

    /// A message must arrive whole within this long of its first byte, or
    /// the connection is closed (a slow or never-finished message pins
    /// memory). Every duration flag takes 500ms, 20s, 2m or plain seconds
    /// (fractions allowed).
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
    /// (/healthz and /metrics still answer). Default: as many as the
    /// open-file limit allows (the relay raises it to its maximum at start,
    /// and keeps some for itself), at most 100000. Asking for more than the
    /// limit allows is warned about at start.
    #[arg(long, value_parser = at_least_one, value_name = "N")]
    pub max_connections: Option<usize>,

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

    /// Media bytes queued per receiver before dropping (at most 8MiB).
    #[arg(long, default_value = "8MiB", value_parser = media_queue_bytes, value_name = "SIZE")]
    pub media_queue_bytes: u64,

    /// Control messages queued per receiver. One member may hold a quarter of
    /// them at another (more is refused, and the sender told); a receiver
    /// that can't take the relay's own (presence) is disconnected. Default
    /// and minimum: 4 x --max-peers-per-room.
    #[arg(long, value_name = "N")]
    pub control_queue_messages: Option<usize>,

    /// Control bytes queued per receiver. One member may hold
    /// 4 x --max-control-bytes of them at another (more is refused).
    #[arg(long, default_value = "16MiB", value_parser = parse_size, value_name = "SIZE")]
    pub control_queue_bytes: usize,

    /// Unsent bytes the kernel may hold per client socket (TCP_NOTSENT_LOWAT).
    /// Kept small so a slow receiver's backlog sits in the relay's queue,
    /// where stale media is dropped, rather than in the kernel, where it only
    /// adds delay. 0: the kernel's default.
    #[arg(long, default_value = "4KiB", value_parser = socket_unsent_limit, value_name = "SIZE")]
    pub socket_unsent_limit: u32,

    /// Media that waited this long in a receiver's queue is dropped instead
    /// of sent: late video is worse than none.
    #[arg(long, default_value = "300ms", value_parser = parse_duration, value_name = "DURATION")]
    pub media_max_age: Duration,

    /// Redis URL (redis://HOST:PORT): relays sharing one Redis serve the same
    /// rooms. Without it the relay is a single process.
    #[arg(long, env = "STREAMFLOW_REDIS_URL", value_name = "URL")]
    pub redis: Option<String>,

    /// Redis Cluster seed nodes (redis://HOST:PORT[,redis://HOST:PORT...]):
    /// like --redis, but each room's channel and keys live on the shard
    /// that owns the room's slot (sharded pub/sub, Redis >= 7), so the fleet
    /// grows by adding shards, and a failing master costs only its rooms a
    /// pause until its replica takes over.
    #[arg(
        long,
        env = "STREAMFLOW_REDIS_CLUSTER",
        value_name = "SEEDS",
        conflicts_with = "redis"
    )]
    pub redis_cluster: Option<String>,

    /// With --redis or --redis-cluster: a relay that stops refreshing its presence for this long
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

    /// The Redis the bus uses, if any (`--redis` or `--redis-cluster`).
    pub fn bus_target(&self) -> anyhow::Result<Option<crate::bus::Target>> {
        Ok(match (&self.redis, &self.redis_cluster) {
            (Some(url), _) => Some(crate::bus::Target::Single(url.clone())),
            (None, Some(seeds)) => Some(crate::bus::Target::cluster(seeds)?),
            (None, None) => None,
        })
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

    /// The connection limit in force: --max-connections, or what
    /// [`crate::server::start`] sized it to from the open-file limit.
    pub fn max_connections(&self) -> usize {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    pub fn control_queue_messages(&self) -> usize {
        let floor = 4 * self.max_peers_per_room;
        self.control_queue_messages.unwrap_or(floor).max(floor)
    }
}

/// The most connections a relay takes by default, open files permitting.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// A count of at least 1 (0 would refuse everyone, or leak).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// The address `--listen PORT` and `--listen :PORT` keep: loopback, as the
/// default listen address is (taking calls from the network is a choice).
pub const DEFAULT_LISTEN_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The port `--listen HOST` (no port) keeps.
pub const DEFAULT_PORT: u16 = 8787;

/// The forms every listen flag takes, for errors and `--help`.
const LISTEN_FORMS: &str =
    "IP:PORT, [IPv6]:PORT, HOST:PORT (a name, resolved now), :PORT or PORT (127.0.0.1), or IP/HOST alone (port 8787)";

/// A listen address for `--listen` and `--metrics-listen`: `IP:PORT`,
/// `[IPv6]:PORT`, `HOST:PORT` (resolved at start; IPv4 preferred when a
/// name has both), `:PORT` or `PORT` (127.0.0.1 with that port), or an IP
/// or host alone (port 8787). Port 0 asks for any free port.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("an empty address: use {LISTEN_FORMS}"));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // `8787` and `:8787`: the default address with that port.
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if port_only.bytes().all(|b| b.is_ascii_digit()) {
        return listen_port(port_only, text).map(|port| SocketAddr::new(DEFAULT_LISTEN_IP, port));
    }
    // An IP alone (`0.0.0.0`, `::1`, `[::1]`): the default port.
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    // A host name, with or without a port.
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, listen_port(port, text)?),
        None => (text, DEFAULT_PORT),
    };
    let valid_name = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !valid_name {
        return Err(format!("{text:?} is not an address: use {LISTEN_FORMS}"));
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?} ({e}): use an IP address, e.g. 127.0.0.1:{port} or 0.0.0.0:{port}"))?
        .collect();
    // IPv4 first: clients are told ws://127.0.0.1 by default, and a name
    // like `localhost` often resolves to ::1 first.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{host:?} resolves to no address: use an IP address"))
}

fn listen_port(port: &str, text: &str) -> Result<u16, String> {
    if port.is_empty() {
        return Err(format!("{text:?} has no port: use {LISTEN_FORMS}"));
    }
    port.parse::<u16>().map_err(|_| {
        format!("the port in {text:?} must be a number from 0 (any free port) to 65535")
    })
}

/// The forms every size flag takes, for errors.
const SIZE_FORMS: &str = "a size like 1048576 (bytes), 64KiB, 4MiB or 1GiB";

/// A size for every byte-count flag: plain bytes, or a number with KiB,
/// MiB or GiB (K/M/G and KB/MB/GB mean the same, binary; any case; `1.5MiB`
/// is fine if it comes to whole bytes). Above 0.
pub fn parse_size(text: &str) -> Result<usize, String> {
    parse_size_within(text, 1, usize::MAX)
}

/// [`parse_size`] for a flag with bounds, which errors name.
pub fn parse_size_within(text: &str, min: usize, max: usize) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ if number.is_empty() => {
            return Err(format!("{text:?} is not {SIZE_FORMS}"));
        }
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use {SIZE_FORMS}"
            ))
        }
    };
    let too_large = || format!("{text:?} is too large");
    let bytes: u64 = if number.contains('.') {
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not {SIZE_FORMS}"))?;
        let bytes = value * factor as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(too_large());
        }
        if bytes.fract() != 0.0 {
            return Err(format!("{text:?} is not a whole number of bytes"));
        }
        bytes as u64
    } else {
        number
            .parse::<u64>()
            .map_err(|_| format!("{text:?} is not {SIZE_FORMS}"))?
            .checked_mul(factor)
            .ok_or_else(too_large)?
    };
    let bytes = usize::try_from(bytes).map_err(|_| too_large())?;
    if bytes < min {
        return Err(match min {
            1 => "a size must be above 0".into(),
            _ => format!("{text:?} is too small: at least {}", show_size(min)),
        });
    }
    if bytes > max {
        return Err(format!("{text:?} is too large: at most {}", show_size(max)));
    }
    Ok(bytes)
}

/// `8MiB` rather than `8388608` where it is exact.
fn show_size(bytes: usize) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// `--media-queue-bytes`: 1 byte to 8 MiB.
fn media_queue_bytes(text: &str) -> Result<u64, String> {
    parse_size_within(text, 1, 8 << 20).map(|b| b as u64)
}

/// `--socket-unsent-limit`: 0 (the kernel's default) to 4 GiB.
fn socket_unsent_limit(text: &str) -> Result<u32, String> {
    parse_size_within(text, 0, u32::MAX as usize).map(|b| b as u32)
}

/// A timer period: a duration of at least 10 ms (shorter ones would spin).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(10) {
        return Err(format!("{text:?} is too short: at least 10ms"));
    }
    Ok(d)
}

/// The forms every duration flag takes, for errors.
const DURATION_FORMS: &str = "a duration like 500ms, 20s, 2m or 2.5 (seconds)";

/// A duration for every time flag: `500ms`, `20s`, `2m` or plain seconds;
/// fractions allowed (`2.5`, `1.5s`), any case. Above 0.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err("a duration must be above 0".into());
    }
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not {DURATION_FORMS}"))?;
    let seconds = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s or m, e.g. 500ms, 20s, 2m"
            ))
        }
    };
    // Beyond a year is a typo; it also keeps `Duration` from overflowing.
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err("a duration must be above 0".into());
    }
    if seconds > 366.0 * 86400.0 {
        return Err("a duration must be at most a year".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A whole number of seconds, in any duration form (`20`, `20s`, `2m`),
/// for flags that count seconds.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let d = parse_duration(text)?;
    if d.subsec_nanos() != 0 {
        return Err("use whole seconds, e.g. 20, 20s or 2m".into());
    }
    Ok(d.as_secs())
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
        assert_eq!(c.media_queue_bytes, 8 << 20);
        assert_eq!(c.control_queue_bytes, 16 << 20);
        assert_eq!(c.socket_unsent_limit, 4 << 10);
        // Sized from the open-file limit at start.
        assert_eq!(c.max_connections, None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        // Any case; K/M/G and KB/MB/GB are binary too; a space is fine.
        assert_eq!(parse_size("1mib"), Ok(1 << 20));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("4MB"), Ok(4 << 20));
        assert_eq!(parse_size("16k"), Ok(16 << 10));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100B"), Ok(100));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        for bad in [
            "0", "0KiB", "lots", "5TiB", "-1", "", "MiB", "1.5", "0.1KiB", "1.2.3MiB",
        ] {
            let e = parse_size(bad).expect_err(bad);
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(parse_size("lots").unwrap_err().contains("64KiB"));
        assert!(parse_size("5TiB").unwrap_err().contains("KiB"));
        assert!(parse_size("99999999999GiB")
            .unwrap_err()
            .contains("too large"));
        assert_eq!(
            parse_size_within("9MiB", 1, 8 << 20),
            Err("\"9MiB\" is too large: at most 8MiB".into())
        );
        assert_eq!(parse_size_within("0", 0, 10), Ok(0));
        assert!(parse_size_within("4", 8, 100)
            .unwrap_err()
            .contains("at least 8 bytes"));
    }

    #[test]
    fn listen_addresses() {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(parse_listen("127.0.0.1:8787"), Ok(v4("127.0.0.1:8787")));
        assert_eq!(parse_listen("0.0.0.0:9000"), Ok(v4("0.0.0.0:9000")));
        assert_eq!(parse_listen("[::1]:8787"), Ok(v4("[::1]:8787")));
        assert_eq!(parse_listen("127.0.0.1:0"), Ok(v4("127.0.0.1:0")));
        // The forms: a port alone keeps 127.0.0.1, a name resolves.
        assert_eq!(parse_listen("8787"), Ok(v4("127.0.0.1:8787")));
        assert_eq!(parse_listen(":8787"), Ok(v4("127.0.0.1:8787")));
        assert_eq!(parse_listen(" :9100 "), Ok(v4("127.0.0.1:9100")));
        let local = parse_listen("localhost:8787").expect("localhost resolves");
        assert!(local.ip().is_loopback() && local.port() == 8787, "{local}");
        // An address alone keeps the default port.
        assert_eq!(parse_listen("0.0.0.0"), Ok(v4("0.0.0.0:8787")));
        assert_eq!(parse_listen("::1"), Ok(v4("[::1]:8787")));
        assert_eq!(parse_listen("[::1]"), Ok(v4("[::1]:8787")));
        assert_eq!(parse_listen("localhost").map(|a| a.port()), Ok(8787));
        for bad in [
            "",
            ":",
            "99999",
            ":70000",
            "127.0.0.1:99999",
            "localhost:",
            "a b:1",
            "host:port",
            "1.2.3.4:-1",
            "ws://h:1",
        ] {
            let e = parse_listen(bad).expect_err(bad);
            assert!(
                e.contains("PORT") || e.contains("port") || e.contains("resolve"),
                "{bad}: {e}"
            );
        }
        assert!(parse_listen("no-such-host.invalid:8787")
            .unwrap_err()
            .contains("cannot resolve"));
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
        // Fractions, any case, a space before the unit.
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500MS"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1 m"), Ok(Duration::from_secs(60)));
        for bad in [
            "0",
            "-3",
            "-1s",
            "",
            "s",
            "1e9",
            "2h",
            "1.2.3s",
            "99999999m",
        ] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(
                e.contains("500ms") || e.contains("above 0") || e.contains("at most a year"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn whole_seconds() {
        assert_eq!(parse_seconds("20"), Ok(20));
        assert_eq!(parse_seconds("20s"), Ok(20));
        assert_eq!(parse_seconds("2m"), Ok(120));
        assert_eq!(parse_seconds("2000ms"), Ok(2));
        assert!(parse_seconds("1.5").unwrap_err().contains("whole seconds"));
        assert!(parse_seconds("0").is_err());
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
        // Every size flag takes the same forms (the examples).
        assert!(parse(&["--max-message-bytes", "1MiB", "--media-queue-bytes", "4MiB"]).is_ok());
        assert!(parse(&[
            "--max-message-bytes",
            "1048576",
            "--media-queue-bytes",
            "4194304"
        ])
        .is_ok());
        assert!(parse(&[
            "--control-queue-bytes",
            "32MiB",
            "--socket-unsent-limit",
            "64KiB"
        ])
        .is_ok());
        assert!(parse(&["--socket-unsent-limit", "0"]).is_ok());
        assert!(parse(&["--media-queue-bytes", "9MiB"]).is_err());
        assert!(parse(&["--max-message-bytes", "0"]).is_err());
        assert!(parse(&["--max-connections", "0"]).is_err());
        // Listen forms.
        for listen in [
            "8787",
            ":8787",
            "localhost:8787",
            "[::1]:8787",
            "0.0.0.0:8787",
        ] {
            assert!(parse(&["--listen", listen]).is_ok(), "{listen}");
        }
        assert!(parse(&["--metrics-listen", ":9100"]).is_ok());
        assert!(parse(&["--listen", "127.0.0.1:99999"]).is_err());
        let c =
            Wrapper::try_parse_from(["relay", "--max-message-bytes", "2MiB", "--listen", ":9000"])
                .map(|w| w.config)
                .map_err(|e| e.to_string());
        let c = c.expect("parses");
        assert_eq!(c.max_message_bytes, 2 << 20);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        let e = Wrapper::try_parse_from(["relay", "--max-message-bytes", "1XB"])
            .map(|_| ())
            .expect_err("unit");
        assert!(e.to_string().contains("KiB"), "{e}");
    }
}
