//! Accept loop, HTTP endpoints and the WebSocket upgrade.
//!
//! Every TCP (or TLS) connection is served by hyper: `GET /healthz` and
//! `GET /metrics` are answered as plain HTTP (unless `--metrics-listen` moved
//! them), and a WebSocket upgrade becomes a [`crate::connection`] task.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::{RelayConfig, DEFAULT_MAX_CONNECTIONS};
use crate::hub::Hub;
use crate::memory::{Budget, CountingIo};
use crate::metrics::Metrics;
use crate::outbox::QueueLimits;

/// Sockets accepted beyond --max-connections so /healthz and /metrics still
/// answer when the relay is full (WebSocket upgrades get 503 meanwhile).
const HEALTH_RESERVE: usize = 64;
/// File descriptors kept for everything but client sockets (Redis, logs,
/// listeners).
const FD_RESERVE: u64 = 64;
/// The quickest the budget reacts twice in a row to going over its limit.
const BUDGET_REACT: Duration = Duration::from_millis(5);
/// How often the memory budget and message deadlines are checked.
const BUDGET_CHECK: Duration = Duration::from_millis(100);

/// State every connection task shares.
pub struct Shared {
    pub config: RelayConfig,
    pub hub: Hub,
    pub metrics: Arc<Metrics>,
    pub queue_limits: QueueLimits,
    pub shutdown: CancellationToken,
    /// The close code and reason connections get on shutdown.
    pub farewell: Mutex<(u16, String)>,
    /// WebSocket connection tasks, awaited on shutdown.
    tasks: TaskTracker,
    counts: Mutex<ConnectionCounts>,
    /// Everything clients make the relay hold (`--max-memory`).
    pub budget: Arc<Budget>,
    /// Addresses that were closed for abuse, and until when they wait.
    penalties: Mutex<HashMap<IpAddr, Penalty>>,
}

/// A short wait for an address whose connection was closed for abuse:
/// doubling with repeat offences (2 s, 4 s, … 2 min).
#[derive(Clone, Copy)]
struct Penalty {
    until: std::time::Instant,
    offences: u32,
}

/// Penalised addresses remembered at most (oldest forgotten first).
const MAX_PENALTIES: usize = 100_000;

impl Shared {
    /// The connection from `ip` was closed for abuse: make it wait before
    /// the next one.
    pub fn penalize(&self, ip: IpAddr) {
        let now = std::time::Instant::now();
        let mut p = self.penalties.lock().unwrap_or_else(|e| e.into_inner());
        if p.len() >= MAX_PENALTIES {
            p.retain(|_, pen| pen.until > now);
            if p.len() >= MAX_PENALTIES {
                return;
            }
        }
        let entry = p.entry(ip).or_insert(Penalty {
            until: now,
            offences: 0,
        });
        // Offences long forgiven start over.
        if now.duration_since(entry.until) > Duration::from_secs(600) {
            entry.offences = 0;
        }
        entry.offences = (entry.offences + 1).min(7);
        entry.until = now + Duration::from_secs(1 << entry.offences);
    }

    fn penalized(&self, ip: IpAddr) -> bool {
        let p = self.penalties.lock().unwrap_or_else(|e| e.into_inner());
        p.get(&ip)
            .is_some_and(|pen| pen.until > std::time::Instant::now())
    }
}

#[derive(Default)]
struct ConnectionCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A running relay. Dropping it does not stop it; call [`RelayHandle::shutdown`].
pub struct RelayHandle {
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    tls: bool,
    shared: Arc<Shared>,
    tasks: tokio::task::JoinSet<()>,
}

impl RelayHandle {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// Where `/healthz` answers: `https://` when it shares the TLS listen
    /// port, `http://` on its own `--metrics-listen` port or without TLS.
    pub fn health_url(&self) -> String {
        let scheme = if self.tls && self.metrics_addr == self.addr {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/healthz", self.metrics_addr)
    }

    /// `ws://ADDR` (or `wss://`) for clients.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Closes every connection (peers see close code 1001, "going away":
    /// they reconnect) and stops listening.
    pub async fn shutdown(self) {
        self.close(1001, "relay shutting down").await;
    }

    /// Ends the call for everyone: connections close with
    /// [`crate::protocol::CLOSE_CALL_ENDED`] and `reason`, so clients say so
    /// and exit instead of reconnecting (the host of an embedded relay quit).
    pub async fn end_call(self, reason: &str) {
        self.close(crate::protocol::CLOSE_CALL_ENDED, reason).await;
    }

    async fn close(mut self, code: u16, reason: &str) {
        *self
            .shared
            .farewell
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = (code, reason.to_string());
        self.shared.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    /// Runs until Ctrl-C or SIGTERM, then shuts down.
    pub async fn run_until_signal(self) {
        shutdown_signal().await;
        info!("shutting down");
        self.shutdown().await;
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Binds the listen (and metrics) sockets and starts serving in the background.
pub async fn start(mut config: RelayConfig) -> anyhow::Result<RelayHandle> {
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another relay running there? pick another with --listen",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_listen {
        Some(m) => Some(
            TcpListener::bind(m)
                .await
                .with_context(|| format!("cannot listen on --metrics-listen {m}"))?,
        ),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => l.local_addr()?,
        None => addr,
    };
    let metrics = Arc::new(Metrics::default());
    let (max_connections, warning) = connection_capacity(config.max_connections, raise_fd_limit());
    if let Some(warning) = warning {
        warn!("{warning}");
    }
    config.max_connections = Some(max_connections);
    let (remote_tx, mut remote_rx) = tokio::sync::mpsc::channel(4096);
    let bus = match config.bus_target()? {
        Some(target) => {
            let bus = crate::bus::Bus::start(target, config.redis_presence_ttl, remote_tx)?;
            let _ = metrics.bus.set(bus.stats.clone());
            Some(bus)
        }
        None => None,
    };
    let queue_limits = QueueLimits {
        media_frames: config.media_queue_frames as usize,
        media_bytes: config.media_queue_bytes as usize,
        control_messages: config.control_queue_messages(),
        control_bytes: config.control_queue_bytes,
        media_max_age: config.media_max_age,
        audio_messages: QueueLimits::AUDIO_MESSAGES,
        audio_bytes: QueueLimits::AUDIO_BYTES,
        audio_max_age: QueueLimits::AUDIO_MAX_AGE,
    };
    let budget = Budget::new(config.max_memory, metrics.clone());
    metrics
        .memory_limit
        .store(config.max_memory as i64, Relaxed);
    // A member's control at one receiver: a few of the largest messages.
    let control_share = (4 * config.max_control_bytes).max(64 << 10);
    let shared = Arc::new(Shared {
        hub: Hub::new(
            config.max_rooms,
            config.limits(),
            control_share,
            metrics.clone(),
            bus,
            budget.clone(),
        ),
        metrics,
        queue_limits,
        budget,
        penalties: Mutex::new(HashMap::new()),
        shutdown: CancellationToken::new(),
        farewell: Mutex::new((1001, "relay shutting down".into())),
        tasks: TaskTracker::new(),
        counts: Mutex::new(ConnectionCounts::default()),
        config,
    });
    let mut tasks = tokio::task::JoinSet::new();
    if shared.config.redis.is_some() || shared.config.redis_cluster.is_some() {
        // What other relays send, delivered to our members.
        let shared = shared.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    ev = remote_rx.recv() => match ev {
                        Some(ev) => shared.hub.deliver_remote(ev),
                        None => return,
                    },
                    _ = shared.shutdown.cancelled() => return,
                }
            }
        });
    }
    {
        // The memory budget and message deadlines, watched centrally (one
        // timer, not one per connection).
        let shared = shared.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(BUDGET_CHECK);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    // Over the budget between ticks: shed now, then pause
                    // briefly so a flood of growth isn't a busy loop.
                    _ = shared.budget.over_limit() => {
                        shared.budget.enforce();
                        tokio::time::sleep(BUDGET_REACT).await;
                    }
                    _ = shared.shutdown.cancelled() => return,
                }
                shared
                    .budget
                    .expire_unfinished(shared.config.message_deadline);
                shared.budget.enforce();
                shared
                    .metrics
                    .memory_used
                    .store(shared.budget.used() as i64, Relaxed);
            }
        });
    }
    tasks.spawn(accept_loop(
        listener,
        tls.clone(),
        shared.clone(),
        metrics_listener.is_none(),
    ));
    if let Some(l) = metrics_listener {
        tasks.spawn(metrics_loop(l, shared.clone()));
    }
    info!(
        %addr,
        tls = tls.is_some(),
        %metrics_addr,
        max_connections = shared.config.max_connections(),
        "relay listening"
    );
    Ok(RelayHandle {
        addr,
        metrics_addr,
        tls: tls.is_some(),
        shared,
        tasks,
    })
}

fn load_tls(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read PEM certificates from {}", cert.display()))?;
    if certs.is_empty() {
        bail!("no certificate found in {}", cert.display());
    }
    if is_ca_certificate(&certs[0]) {
        bail!(
            "the first certificate in {} is a CA certificate (CA:TRUE): clients refuse it as a server's. Give the relay a leaf certificate for its host name, signed by that CA (chain after it)",
            cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a PEM private key from {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// True when the certificate says it is a CA (basicConstraints CA:TRUE).
fn is_ca_certificate(der: &[u8]) -> bool {
    use x509_cert::der::oid::AssociatedOid;
    use x509_cert::der::Decode;
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return false; // rustls will say what is wrong with it
    };
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|ext| ext.extn_id == x509_cert::ext::pkix::BasicConstraints::OID)
        .filter_map(|ext| {
            x509_cert::ext::pkix::BasicConstraints::from_der(ext.extn_value.as_bytes()).ok()
        })
        .any(|bc| bc.ca)
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    serve_metrics: bool,
) {
    let mut connections = tokio::task::JoinSet::new();
    let mut last_accept_warning: Option<std::time::Instant> = None;
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning, and say
                    // so once in a while, not ten times a second.
                    if last_accept_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                        warn!("accept failed: {e} (out of file descriptors? lower --max-connections)");
                        last_accept_warning = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shared.shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Some(guard) = ConnectionGuard::admit(&shared, remote.ip()) else {
            shared.metrics.connections_refused.fetch_add(1, Relaxed);
            debug!(%remote, "connection refused by limits");
            continue;
        };
        let _ = stream.set_nodelay(true);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&stream)
            .set_tcp_notsent_lowat(shared.config.socket_unsent_limit);
        let shared = shared.clone();
        let tls = tls.clone();
        let guard = Arc::new(guard);
        connections.spawn(async move {
            match tls {
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(stream)) => {
                            serve_http(stream, remote, shared, serve_metrics, guard).await
                        }
                        Ok(Err(e)) => debug!(%remote, "TLS handshake failed: {e}"),
                        Err(_) => debug!(%remote, "TLS handshake timed out"),
                    }
                }
                None => serve_http(stream, remote, shared, serve_metrics, guard).await,
            }
        });
    }
    // Connections see the cancelled token and close themselves.
    while connections.join_next().await.is_some() {}
}

async fn metrics_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream: TcpStream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue }
            },
            _ = shared.shutdown.cancelled() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(endpoint(&req, &shared, true)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Serves HTTP on one connection; `guard` stays alive as long as the
/// connection does, including after a WebSocket upgrade.
async fn serve_http<S>(
    stream: S,
    remote: SocketAddr,
    shared: Arc<Shared>,
    serve_metrics: bool,
    guard: Arc<ConnectionGuard>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _pending = Pending::new(&shared.metrics);
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let shared = shared.clone();
        let guard = guard.clone();
        async move { Ok::<_, Infallible>(route(req, remote, shared, serve_metrics, guard)) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(e) = connection.await {
        debug!(%remote, "http: {e}");
    }
}

fn route(
    mut req: Request<Incoming>,
    remote: SocketAddr,
    shared: Arc<Shared>,
    serve_metrics: bool,
    guard: Arc<ConnectionGuard>,
) -> Response<Full<Bytes>> {
    let Some(accept_key) = websocket_accept_key(&req) else {
        return endpoint(&req, &shared, serve_metrics);
    };
    // Full: the socket was let in (so health checks answer), the call not.
    if shared.metrics.connections.load(Relaxed) >= shared.config.max_connections() as i64 {
        shared.metrics.connections_refused.fetch_add(1, Relaxed);
        return refusal("the relay is full (--max-connections); try another relay or later\n");
    }
    let Some(account) = shared.budget.admit() else {
        shared.metrics.memory_refused.fetch_add(1, Relaxed);
        return refusal("the relay is at its memory budget (--max-memory); try again shortly\n");
    };
    let upgrade = hyper::upgrade::on(&mut req);
    let limit = shared.config.max_message_bytes;
    // Let a moderately oversize message through to answer it with `too_large`;
    // anything past twice the limit is refused by tungstenite unread.
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(limit.saturating_mul(2).max(limit + 4096)))
        .max_frame_size(Some(limit.saturating_mul(2).max(limit + 4096)))
        .max_write_buffer_size(16 << 20)
        // Small buffers: they are per connection, whatever it does.
        .write_buffer_size(16 << 10)
        // Each read zero-fills this much; frames are a few KiB.
        .read_buffer_size(16 << 10);
    let tasks = shared.tasks.clone();
    tasks.spawn(async move {
        let _guard = guard;
        match upgrade.await {
            Ok(upgraded) => {
                shared.metrics.connections.fetch_add(1, Relaxed);
                let io = CountingIo::new(TokioIo::new(upgraded), account.clone());
                let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config)).await;
                crate::connection::serve(ws, shared.clone(), remote, account).await;
                shared.metrics.connections.fetch_sub(1, Relaxed);
            }
            Err(e) => debug!(%remote, "upgrade failed: {e}"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    response
}

/// A plain-text 503 for an upgrade the relay can't take now.
fn refusal(reason: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(reason.as_bytes())));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// Counts a socket in the `pending_upgrades` gauge while it serves HTTP.
struct Pending(Arc<Metrics>);

impl Pending {
    fn new(metrics: &Arc<Metrics>) -> Self {
        metrics.pending_upgrades.fetch_add(1, Relaxed);
        Pending(metrics.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending_upgrades.fetch_sub(1, Relaxed);
    }
}

/// Raises the open-file soft limit to the hard limit (each connection is a
/// descriptor; the usual soft limit of 1024 runs out long before
/// --max-connections) and returns the limit now in force, if known.
fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is u64 on most targets, not all
        Some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// The connection limit for an open-file limit: what was asked for, or by
/// default as many as fit beside the health reserve and the relay's own
/// descriptors (at most [`DEFAULT_MAX_CONNECTIONS`]). A warning only when
/// an explicit --max-connections can't be reached, or nothing fits at all.
pub fn connection_capacity(
    requested: Option<usize>,
    open_files: Option<u64>,
) -> (usize, Option<String>) {
    let Some(open_files) = open_files else {
        return (requested.unwrap_or(DEFAULT_MAX_CONNECTIONS), None);
    };
    let fit = open_files.saturating_sub(HEALTH_RESERVE as u64 + FD_RESERVE);
    let fit = usize::try_from(fit).unwrap_or(usize::MAX);
    let advice = "raise it (ulimit -n, LimitNOFILE=)";
    match requested {
        Some(asked) if asked > fit => (
            asked,
            Some(format!(
                "the open-file limit is {open_files}: about {fit} connections fit, not --max-connections {asked}; {advice} or lower --max-connections"
            )),
        ),
        Some(asked) => (asked, None),
        None if fit == 0 => (
            1,
            Some(format!(
                "the open-file limit is {open_files}: too low for client connections; {advice}"
            )),
        ),
        None => (fit.min(DEFAULT_MAX_CONNECTIONS), None),
    }
}

/// `Sec-WebSocket-Accept` for a valid RFC 6455 upgrade request, else `None`.
fn websocket_accept_key<B>(req: &Request<B>) -> Option<String> {
    let headers = req.headers();
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    let ok = req.method() == Method::GET
        && has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    ok.then(|| derive_accept_key(key.as_bytes()))
}

fn endpoint<B>(req: &Request<B>, shared: &Shared, serve_metrics: bool) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    match (req.method(), req.uri().path(), serve_metrics) {
        (&Method::GET, "/healthz", true) => text(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/metrics", true) => text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics.render(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "StreamFlow relay: connect with a WebSocket client, e.g. `streamflow join --relay ws://HOST:PORT`\n".into(),
        ),
    }
}

/// Counts a connection against the global and per-IP limits while it lives.
struct ConnectionGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl ConnectionGuard {
    fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<Self> {
        if shared.penalized(ip) {
            return None;
        }
        let mut counts = shared.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= shared.config.max_connections() + HEALTH_RESERVE {
            return None;
        }
        let count = counts.per_ip.entry(ip).or_insert(0);
        if shared
            .config
            .max_connections_per_ip
            .is_some_and(|max| *count >= max)
        {
            return None;
        }
        *count += 1;
        counts.total += 1;
        Some(ConnectionGuard {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(count) = counts.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_sized_to_the_open_file_limit() {
        let reserved = HEALTH_RESERVE as u64 + FD_RESERVE;
        // The default fits the limit, leaving the reserve: no warning.
        assert_eq!(
            connection_capacity(None, Some(20_000)),
            (20_000 - reserved as usize, None)
        );
        assert_eq!(
            connection_capacity(None, Some(1024)),
            (1024 - reserved as usize, None)
        );
        // A generous limit: the usual default.
        assert_eq!(
            connection_capacity(None, Some(1 << 20)),
            (DEFAULT_MAX_CONNECTIONS, None)
        );
        assert_eq!(
            connection_capacity(None, Some(u64::MAX)),
            (DEFAULT_MAX_CONNECTIONS, None)
        );
        // Unknown limit: the usual default.
        assert_eq!(
            connection_capacity(None, None),
            (DEFAULT_MAX_CONNECTIONS, None)
        );
        // Asked for and it fits: kept, quiet.
        assert_eq!(connection_capacity(Some(500), Some(1024)), (500, None));
        assert_eq!(connection_capacity(Some(7), None), (7, None));
        // Asked for more than fits: kept, with the warning.
        let (n, warning) = connection_capacity(Some(100_000), Some(20_000));
        assert_eq!(n, 100_000);
        let warning = warning.expect("a warning");
        assert!(warning.contains("open-file limit is 20000"), "{warning}");
        assert!(warning.contains("--max-connections 100000"), "{warning}");
        // Nothing fits at all: say so even by default.
        let (n, warning) = connection_capacity(None, Some(100));
        assert_eq!(n, 1);
        assert!(warning.expect("a warning").contains("ulimit -n"));
    }
}
