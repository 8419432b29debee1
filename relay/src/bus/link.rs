//! The seam between the bus and its Redis: one server (`--redis`) or a
//! Redis Cluster (`--redis-cluster`). Everything above talks to a [`Conn`]
//! for commands and a [`Subscriber`] for room channels, the same way for
//! both.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::ConnectionLike;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, PushKind, RedisFuture, RedisResult, Value};
use tokio::sync::mpsc;

/// Where the bus finds Redis.
#[derive(Clone, Debug)]
pub enum Target {
    /// One Redis server.
    Single(String),
    /// A Redis Cluster, by its seed nodes (any of them will do).
    Cluster(Vec<String>),
}

/// A command in a cluster waits at most this long for its shard, retries
/// included: long enough for a MOVED or ASK, short enough that a dead
/// master is noticed and its rooms repaired after failover.
const CLUSTER_RESPONSE_TIMEOUT: Duration = Duration::from_millis(800);
const CLUSTER_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

impl Target {
    /// `--redis-cluster`'s value: seed URLs separated by commas.
    pub fn cluster(seeds: &str) -> anyhow::Result<Target> {
        let seeds: Vec<String> = seeds
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if seeds.is_empty() {
            anyhow::bail!(
                "--redis-cluster needs at least one seed: redis://HOST:PORT[,redis://HOST:PORT...]"
            );
        }
        Ok(Target::Cluster(seeds))
    }

    pub(super) fn client(&self) -> anyhow::Result<Client> {
        match self {
            Target::Single(url) => redis::Client::open(url.as_str())
                .map(Client::Single)
                .map_err(|e| anyhow::anyhow!("bad --redis URL {url:?}: {e}")),
            Target::Cluster(seeds) => {
                for seed in seeds {
                    redis::IntoConnectionInfo::into_connection_info(seed.as_str())
                        .map_err(|e| anyhow::anyhow!("bad --redis-cluster seed {seed:?}: {e}"))?;
                }
                Ok(Client::Cluster(seeds.clone()))
            }
        }
    }
}

pub(super) enum Client {
    Single(redis::Client),
    Cluster(Vec<String>),
}

impl Client {
    pub fn is_cluster(&self) -> bool {
        matches!(self, Client::Cluster(_))
    }

    /// The cluster's seed nodes, `host:port`.
    pub fn seeds(&self) -> Vec<String> {
        match self {
            Client::Cluster(seeds) => seeds
                .iter()
                .filter_map(|s| redis::IntoConnectionInfo::into_connection_info(s.as_str()).ok())
                .map(|info| info.addr().to_string())
                .collect(),
            Client::Single(_) => Vec::new(),
        }
    }

    /// A command connection and a subscriber, or the error that says why
    /// not (the bus retries with backoff).
    pub async fn connect(&self) -> RedisResult<(Conn, Subscriber)> {
        match self {
            Client::Single(client) => {
                let conn = client.get_multiplexed_async_connection().await?;
                let (sink, stream) = client.get_async_pubsub().await?.split();
                Ok((Conn::Single(conn), Subscriber::Single { sink, stream }))
            }
            Client::Cluster(seeds) => {
                // Sharded pub/sub needs RESP3: messages arrive as pushes, on
                // the same connections as commands, and the client
                // re-subscribes on a node's new connection by itself.
                let (pushes_tx, pushes) = mpsc::unbounded_channel();
                let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushes_tx)
                    .connection_timeout(CLUSTER_CONNECT_TIMEOUT)
                    .response_timeout(CLUSTER_RESPONSE_TIMEOUT)
                    .retries(3)
                    .min_retry_wait(20)
                    .max_retry_wait(200)
                    .build()?;
                let pool = Arc::new(Pool::connect(&client).await?);
                Ok((
                    Conn::Cluster(pool.clone()),
                    Subscriber::Cluster { pool, pushes },
                ))
            }
        }
    }
}

/// Connections to a cluster, one per shard: while a shard fails over, the
/// client recovers its topology and holds every request of *that*
/// connection, so each shard's rooms get their own and the other shards'
/// rooms go on untouched.
pub(super) struct Pool {
    conns: Vec<redis::cluster_async::ClusterConnection>,
    /// Slot → connection, from the masters at connect time (a failover
    /// keeps a shard's slots; a resharded slot keeps its connection, which
    /// follows MOVED to the slot's new shard).
    by_slot: Vec<u8>,
    /// The masters at connect time, `host:port`.
    pub masters: Vec<String>,
}

/// Connections per cluster at most: beyond, shards share them.
const MAX_POOL: usize = 16;

impl Pool {
    async fn connect(client: &redis::cluster::ClusterClient) -> RedisResult<Pool> {
        let mut first = client.get_async_connection().await?;
        let slots = first
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let shards = super::shards::parse_slots(&slots);
        let mut masters: Vec<String> = Vec::new();
        let mut by_slot = vec![0u8; 16384];
        for shard in &shards {
            let i = match masters.iter().position(|m| *m == shard.master) {
                Some(i) => i,
                None => {
                    masters.push(shard.master.clone());
                    masters.len() - 1
                }
            };
            for slot in shard.slots.0..=shard.slots.1.min(16383) {
                by_slot[usize::from(slot)] = (i % MAX_POOL) as u8;
            }
        }
        let mut conns = vec![first];
        for _ in 1..masters.len().clamp(1, MAX_POOL) {
            conns.push(client.get_async_connection().await?);
        }
        Ok(Pool {
            conns,
            by_slot,
            masters,
        })
    }

    /// The connection for a key or channel (by its hash slot).
    fn for_key(&self, key: &[u8]) -> redis::cluster_async::ClusterConnection {
        let i = self.by_slot[usize::from(key_slot(key))];
        self.conns[usize::from(i)].clone()
    }

    fn for_cmd(&self, cmd: &Cmd) -> redis::cluster_async::ClusterConnection {
        match cmd.args_iter().nth(1) {
            Some(redis::Arg::Simple(key)) => self.for_key(key),
            _ => self.conns[0].clone(),
        }
    }
}

/// A key's cluster slot: its hash tag's (the part between the first `{`
/// and the next `}`, if not empty) or the whole key's CRC16, as Redis.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tagged.unwrap_or(key)) % 16384
}

/// A command connection to one Redis or to a whole cluster (routed by key,
/// following MOVED and ASK).
#[derive(Clone)]
pub(super) enum Conn {
    Single(redis::aio::MultiplexedConnection),
    Cluster(Arc<Pool>),
}

impl Conn {
    /// `PUBLISH`, or `SPUBLISH` in a cluster (the room's shard only).
    pub fn publish_cmd(&self, channel: String, message: String) -> Cmd {
        let name = match self {
            Conn::Single(_) => "PUBLISH",
            Conn::Cluster(_) => "SPUBLISH",
        };
        let mut cmd = redis::cmd(name);
        cmd.arg(channel).arg(message);
        cmd
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// The masters at connect time (cluster mode), for the shard watch.
    pub fn masters(&self) -> Vec<String> {
        match self {
            Conn::Cluster(pool) => pool.masters.clone(),
            Conn::Single(_) => Vec::new(),
        }
    }

    /// Cluster mode: unsubscribes the channel on its shard's connection.
    pub async fn sunsubscribe(&self, channel: String) -> RedisResult<()> {
        match self {
            Conn::Cluster(pool) => pool.for_key(channel.as_bytes()).sunsubscribe(channel).await,
            Conn::Single(_) => Ok(()),
        }
    }

    /// Cluster mode: subscribes the channel again on its shard's
    /// connection (idempotent).
    pub async fn ssubscribe(&self, channel: String) -> RedisResult<()> {
        match self {
            Conn::Cluster(pool) => pool.for_key(channel.as_bytes()).ssubscribe(channel).await,
            Conn::Single(_) => Ok(()),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(pool) => {
                let mut c = pool.for_cmd(cmd);
                Box::pin(async move { c.req_packed_command(cmd).await })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(pool) => {
                let mut c = pool.conns[0].clone();
                Box::pin(async move { c.req_packed_commands(pipeline, offset, count).await })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(pool) => pool.conns[0].get_db(),
        }
    }
}

/// What the subscriber hears.
pub(super) enum Heard {
    Message {
        channel: String,
        payload: Vec<u8>,
    },
    /// The server dropped our subscription to this channel (in a cluster:
    /// its slot moved to another shard).
    Dropped {
        channel: String,
    },
    /// A connection to one of the cluster's nodes closed.
    NodeLost,
    /// Anything else (subscription confirmations).
    Nothing,
}

pub(super) enum Subscriber {
    Single {
        sink: redis::aio::PubSubSink,
        stream: redis::aio::PubSubStream,
    },
    Cluster {
        pool: Arc<Pool>,
        pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    },
}

impl Subscriber {
    pub async fn subscribe(&mut self, channel: String) -> RedisResult<()> {
        match self {
            Subscriber::Single { sink, .. } => sink.subscribe(channel).await,
            Subscriber::Cluster { pool, .. } => {
                pool.for_key(channel.as_bytes()).ssubscribe(channel).await
            }
        }
    }

    pub async fn unsubscribe(&mut self, channel: String) -> RedisResult<()> {
        match self {
            Subscriber::Single { sink, .. } => sink.unsubscribe(channel).await,
            Subscriber::Cluster { pool, .. } => {
                pool.for_key(channel.as_bytes()).sunsubscribe(channel).await
            }
        }
    }

    /// The next thing heard; `None` when the subscription connection is
    /// gone for good (one server) or the cluster client stopped.
    pub async fn next(&mut self) -> Option<Heard> {
        match self {
            Subscriber::Single { stream, .. } => {
                let msg = stream.next().await?;
                Some(Heard::Message {
                    channel: msg.get_channel_name().to_string(),
                    payload: msg.get_payload_bytes().to_vec(),
                })
            }
            Subscriber::Cluster { pushes, .. } => {
                let push = pushes.recv().await?;
                Some(match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        match redis::Msg::from_push_info(push) {
                            Some(msg) => Heard::Message {
                                channel: msg.get_channel_name().to_string(),
                                payload: msg.get_payload_bytes().to_vec(),
                            },
                            None => Heard::Nothing,
                        }
                    }
                    PushKind::SUnsubscribe => match push.data.first() {
                        Some(Value::BulkString(name)) => Heard::Dropped {
                            channel: String::from_utf8_lossy(name).into_owned(),
                        },
                        _ => Heard::Nothing,
                    },
                    PushKind::Disconnection => Heard::NodeLost,
                    _ => Heard::Nothing,
                })
            }
        }
    }
}
