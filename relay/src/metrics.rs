//! Counters and gauges, rendered as Prometheus text for `GET /metrics`.
//!
//! Plain atomics: every connection task bumps them on its hot path, so they must
//! cost no lock and no allocation.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::protocol::ErrorCode;

#[derive(Default)]
pub struct Metrics {
    pub rooms: AtomicI64,
    pub peers: AtomicI64,
    pub connections: AtomicI64,
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_out: AtomicU64,
    pub media_dropped: AtomicU64,
    pub media_expired: AtomicU64,
    /// Audio dropped for a slow receiver (overflow or too old).
    pub audio_dropped: AtomicU64,
    pub queued_messages: AtomicI64,
    pub queued_bytes: AtomicI64,
    /// Largest single receiver backlog (bytes) seen since start.
    pub queue_high_water_bytes: AtomicU64,
    pub disconnects_slow: AtomicU64,
    /// Control messages refused because their sender was over its share of
    /// a receiver's queue.
    pub control_refused: AtomicU64,
    /// Connections closed to keep the relay within --max-memory.
    pub memory_shed: AtomicU64,
    /// Connections refused because the memory budget was nearly spent.
    pub memory_refused: AtomicU64,
    /// Connections closed for an unfinished message past the deadline.
    pub message_deadline: AtomicU64,
    /// TCP (or TLS) connections accepted and not yet upgraded to WebSocket.
    pub pending_upgrades: AtomicI64,
    /// Bytes charged to the memory budget (set when /metrics renders).
    pub memory_used: AtomicI64,
    pub memory_limit: AtomicI64,
    pub disconnects_abuse: AtomicU64,
    pub timeouts: AtomicU64,
    pub connections_refused: AtomicU64,
    errors: [AtomicU64; ErrorCode::ALL.len()],
    /// Set when the relay runs with a Redis bus.
    pub bus: std::sync::OnceLock<std::sync::Arc<crate::bus::BusStats>>,
}

impl Metrics {
    pub fn error(&self, code: ErrorCode) {
        self.errors[code.index()].fetch_add(1, Relaxed);
    }

    pub fn errors(&self, code: ErrorCode) -> u64 {
        self.errors[code.index()].load(Relaxed)
    }

    pub fn note_backlog(&self, bytes: usize) {
        self.queue_high_water_bytes.fetch_max(bytes as u64, Relaxed);
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: i64| {
            let _ = writeln!(out, "# HELP streamflow_relay_{name} {help}");
            let _ = writeln!(out, "# TYPE streamflow_relay_{name} {kind}");
            let _ = writeln!(out, "streamflow_relay_{name} {value}");
        };
        let g = |a: &AtomicI64| a.load(Relaxed);
        let c = |a: &AtomicU64| a.load(Relaxed) as i64;
        metric(
            "rooms",
            "gauge",
            "Rooms with at least one peer.",
            g(&self.rooms),
        );
        metric("peers", "gauge", "Peers joined to a room.", g(&self.peers));
        metric(
            "connections",
            "gauge",
            "Open WebSocket connections.",
            g(&self.connections),
        );
        metric(
            "messages_in_total",
            "counter",
            "Text messages received from clients.",
            c(&self.messages_in),
        );
        metric(
            "bytes_in_total",
            "counter",
            "Bytes of text messages received from clients.",
            c(&self.bytes_in),
        );
        metric(
            "messages_out_total",
            "counter",
            "Messages written to clients.",
            c(&self.messages_out),
        );
        metric(
            "bytes_out_total",
            "counter",
            "Bytes of messages written to clients.",
            c(&self.bytes_out),
        );
        metric(
            "media_dropped_total",
            "counter",
            "Media messages dropped because a receiver fell behind.",
            c(&self.media_dropped),
        );
        metric(
            "media_expired_total",
            "counter",
            "Media messages dropped because they waited too long (included in media_dropped).",
            c(&self.media_expired),
        );
        metric(
            "control_refused_total",
            "counter",
            "Control messages refused: their sender was over its share of a slow receiver's queue.",
            c(&self.control_refused),
        );
        metric(
            "memory_shed_total",
            "counter",
            "Connections closed to keep the relay within --max-memory.",
            c(&self.memory_shed),
        );
        metric(
            "memory_refused_total",
            "counter",
            "Connections refused because the memory budget was nearly spent.",
            c(&self.memory_refused),
        );
        metric(
            "message_deadline_total",
            "counter",
            "Connections closed for a message unfinished past --message-deadline.",
            c(&self.message_deadline),
        );
        metric(
            "pending_upgrades",
            "gauge",
            "TCP connections accepted and not yet upgraded to WebSocket.",
            g(&self.pending_upgrades),
        );
        metric(
            "memory_used_bytes",
            "gauge",
            "Bytes charged to the memory budget (buffers, unfinished messages, queues).",
            g(&self.memory_used),
        );
        metric(
            "memory_limit_bytes",
            "gauge",
            "The memory budget (--max-memory).",
            g(&self.memory_limit),
        );
        metric(
            "audio_dropped_total",
            "counter",
            "Audio messages dropped because a receiver fell behind or they waited too long.",
            c(&self.audio_dropped),
        );
        metric(
            "queued_messages",
            "gauge",
            "Messages waiting in receiver queues.",
            g(&self.queued_messages),
        );
        metric(
            "queued_bytes",
            "gauge",
            "Bytes waiting in receiver queues.",
            g(&self.queued_bytes),
        );
        metric(
            "queue_high_water_bytes",
            "gauge",
            "Largest backlog of any single receiver since start, in bytes.",
            c(&self.queue_high_water_bytes),
        );
        metric(
            "slow_receiver_disconnects_total",
            "counter",
            "Receivers disconnected because their control backlog overflowed.",
            c(&self.disconnects_slow),
        );
        metric(
            "abuse_disconnects_total",
            "counter",
            "Connections closed for repeated protocol violations.",
            c(&self.disconnects_abuse),
        );
        metric(
            "timeouts_total",
            "counter",
            "Peers dropped for answering nothing within the idle timeout.",
            c(&self.timeouts),
        );
        metric(
            "connections_refused_total",
            "counter",
            "Connections refused by the connection limits.",
            c(&self.connections_refused),
        );
        if let Some(bus) = self.bus.get() {
            metric(
                "redis_connected",
                "gauge",
                "1 while the Redis bus is connected, 0 while local-only.",
                i64::from(bus.connected.load(Relaxed)),
            );
            metric(
                "redis_published_total",
                "counter",
                "Messages published to other relays.",
                c(&bus.published),
            );
            metric(
                "redis_received_total",
                "counter",
                "Messages received from other relays.",
                c(&bus.received),
            );
            metric(
                "redis_dropped_total",
                "counter",
                "Bus messages dropped (Redis down or queue full).",
                c(&bus.dropped),
            );
            metric(
                "redis_repairs_total",
                "counter",
                "Rooms re-subscribed and re-synced after a Redis Cluster fault.",
                c(&bus.repairs),
            );
            let shards = bus.shards.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if !shards.is_empty() {
                let _ = writeln!(out, "# HELP streamflow_relay_redis_shard_up 1 while the shard's master (by slot range) answers pings.");
                let _ = writeln!(out, "# TYPE streamflow_relay_redis_shard_up gauge");
                for s in &shards {
                    let _ = writeln!(
                        out,
                        "streamflow_relay_redis_shard_up{{slots=\"{}-{}\",master=\"{}\"}} {}",
                        s.slots.0,
                        s.slots.1,
                        s.master,
                        u8::from(s.up)
                    );
                }
                let _ = writeln!(out, "# HELP streamflow_relay_redis_shard_repairs_total Rooms on the shard re-subscribed and re-synced after a fault.");
                let _ = writeln!(
                    out,
                    "# TYPE streamflow_relay_redis_shard_repairs_total counter"
                );
                for s in &shards {
                    let _ = writeln!(
                        out,
                        "streamflow_relay_redis_shard_repairs_total{{slots=\"{}-{}\"}} {}",
                        s.slots.0, s.slots.1, s.repairs
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP streamflow_relay_errors_total Error messages sent to clients, by code."
        );
        let _ = writeln!(out, "# TYPE streamflow_relay_errors_total counter");
        for code in ErrorCode::ALL {
            let _ = writeln!(
                out,
                "streamflow_relay_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                self.errors(code)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_error_codes() {
        let m = Metrics::default();
        m.error(ErrorCode::TooLarge);
        m.error(ErrorCode::TooLarge);
        m.rooms.store(3, Relaxed);
        let text = m.render();
        assert!(text.contains("# HELP streamflow_relay_rooms "));
        assert!(text.contains("# TYPE streamflow_relay_rooms gauge\nstreamflow_relay_rooms 3\n"));
        assert!(text.contains("streamflow_relay_errors_total{code=\"too_large\"} 2\n"));
        assert!(text.contains("streamflow_relay_errors_total{code=\"room_full\"} 0\n"));
    }
}
