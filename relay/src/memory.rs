//! The relay's memory budget (`--max-memory`): everything clients can make
//! the relay hold is charged to one counter, whatever clients do.
//!
//! - Each connection: a fixed charge for its buffers, taken at the upgrade
//!   (refused with 503 when the budget is nearly spent, so calls already
//!   running keep their room).
//! - Unfinished inbound messages: a [`FrameTracker`] reads the WebSocket
//!   frame headers as bytes arrive ([`CountingIo`]), so the relay knows how
//!   much of a message it holds before the WebSocket library hands it over,
//!   and since when (a message must finish within the deadline).
//! - Queued output: the outboxes' bytes (already a global gauge).
//!
//! Over the budget, [`Budget::enforce`] sheds offenders: the largest
//! unfinished messages first, then the largest queues, newest first among
//! equals, until it is back under 90%.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::outbox::Outbox;

/// What a connection costs before it holds any message: read and write
/// buffers and bookkeeping (measured: see BENCHMARKS.md, memory per
/// connection), rounded up.
pub const CONNECTION_CHARGE: usize = 48 << 10;
/// Unfinished messages are charged twice their size: the WebSocket library
/// grows its buffer by doubling.
const UNFINISHED_FACTOR: usize = 2;
/// New connections are refused above this share of the budget; shedding
/// brings the total back under it.
const ADMIT_PERCENT: usize = 90;

pub struct Budget {
    limit: usize,
    /// Connection charges and unfinished messages (queues are counted in
    /// the metrics' `queued_bytes`).
    held: AtomicUsize,
    metrics: Arc<Metrics>,
    accounts: Mutex<Vec<Weak<Account>>>,
    /// Woken when a charge takes the total over the limit, so shedding
    /// doesn't wait for the next periodic check.
    pressure: Notify,
}

/// One connection's share of the budget.
pub struct Account {
    budget: Arc<Budget>,
    unfinished: AtomicUsize,
    /// When the unfinished message began (µs since `created`; −1: none).
    unfinished_since_us: AtomicI64,
    created: Instant,
    outbox: Mutex<Weak<Outbox>>,
    shed: AtomicU8,
    /// Woken when the relay sheds this connection.
    pub shed_notify: Notify,
}

/// Why the relay closes a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Over the memory budget, and this connection held the most.
    Memory,
    /// A message unfinished past the deadline.
    Deadline,
}

impl Budget {
    pub fn new(limit: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Budget {
            limit,
            held: AtomicUsize::new(0),
            metrics,
            accounts: Mutex::new(Vec::new()),
            pressure: Notify::new(),
        })
    }

    /// After something grew (a queue, an unfinished message): wakes the
    /// budget's checker if the total is now over the limit.
    pub fn note_growth(&self) {
        if self.used() > self.limit {
            self.pressure.notify_one();
        }
    }

    /// Resolves when [`Budget::note_growth`] found the total over the limit.
    pub async fn over_limit(&self) {
        self.pressure.notified().await;
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        let queued = self.metrics.queued_bytes.load(Relaxed).max(0) as usize;
        self.held.load(Relaxed) + queued
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A new connection, if the budget has room for one.
    pub fn admit(self: &Arc<Self>) -> Option<Arc<Account>> {
        if self.used() + CONNECTION_CHARGE > self.limit * ADMIT_PERCENT / 100 {
            return None;
        }
        self.held.fetch_add(CONNECTION_CHARGE, Relaxed);
        let account = Arc::new(Account {
            budget: self.clone(),
            unfinished: AtomicUsize::new(0),
            unfinished_since_us: AtomicI64::new(-1),
            created: Instant::now(),
            outbox: Mutex::new(Weak::new()),
            shed: AtomicU8::new(0),
            shed_notify: Notify::new(),
        });
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        accounts.retain(|a| a.strong_count() > 0);
        accounts.push(Arc::downgrade(&account));
        Some(account)
    }

    /// Sheds connections while over the budget; returns how many.
    pub fn enforce(&self) -> usize {
        if self.used() <= self.limit {
            return 0;
        }
        let live: Vec<Arc<Account>> = {
            let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            accounts.retain(|a| a.strong_count() > 0);
            accounts.iter().filter_map(Weak::upgrade).collect()
        };
        // Each account's sizes, read once (queues take a lock): idle ones
        // have nothing to give back and are left out.
        let mut freed = 0;
        let mut candidates = Vec::new();
        for a in live {
            let unfinished = a.unfinished.load(Relaxed) * UNFINISHED_FACTOR;
            let queued = a.queued();
            if a.shed_reason().is_some() {
                // Already shed: its memory is freed within moments; count
                // it as freed, or every check would shed more.
                freed += unfinished + queued + CONNECTION_CHARGE;
            } else if unfinished + queued > 0 {
                candidates.push((unfinished, queued, a));
            }
        }
        // Unfinished messages first, then queues; within each, the largest
        // and then the newest.
        candidates.sort_unstable_by_key(|(unfinished, queued, a)| {
            (
                std::cmp::Reverse(*unfinished > 0),
                std::cmp::Reverse(*unfinished.max(queued)),
                std::cmp::Reverse(a.created),
            )
        });
        let target = self.limit * ADMIT_PERCENT / 100;
        let mut shed = 0;
        for (unfinished, queued, a) in candidates {
            if self.used().saturating_sub(freed) <= target {
                break;
            }
            a.shed(Shed::Memory);
            freed += unfinished + queued + CONNECTION_CHARGE;
            shed += 1;
        }
        shed
    }
}

impl Budget {
    /// Closes connections whose message has been unfinished for longer
    /// than `deadline`; returns how many.
    pub fn expire_unfinished(&self, deadline: std::time::Duration) -> usize {
        let accounts: Vec<Arc<Account>> = {
            let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
            accounts.iter().filter_map(Weak::upgrade).collect()
        };
        let mut expired = 0;
        for a in accounts {
            if a.shed_reason().is_none()
                && a.unfinished_since().is_some_and(|t| t.elapsed() > deadline)
            {
                a.shed(Shed::Deadline);
                expired += 1;
            }
        }
        expired
    }
}

impl Account {
    pub fn set_outbox(&self, outbox: &Arc<Outbox>) {
        *self.outbox.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(outbox);
    }

    fn queued(&self) -> usize {
        self.outbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
            .map_or(0, |o| o.backlog().1)
    }

    fn set_unfinished(&self, bytes: usize) {
        let before = self.unfinished.swap(bytes, Relaxed);
        let (before, after) = (before * UNFINISHED_FACTOR, bytes * UNFINISHED_FACTOR);
        if after > before {
            self.budget.held.fetch_add(after - before, Relaxed);
            self.budget.note_growth();
        } else {
            self.budget.held.fetch_sub(before - after, Relaxed);
        }
    }

    /// Since when a message has been unfinished, if one is.
    pub fn unfinished_since(&self) -> Option<Instant> {
        let us = self.unfinished_since_us.load(Relaxed);
        (us >= 0).then(|| self.created + std::time::Duration::from_micros(us as u64))
    }

    fn mark_unfinished(&self, started: bool) {
        let value = if started {
            self.created.elapsed().as_micros() as i64
        } else {
            -1
        };
        self.unfinished_since_us.store(value, Relaxed);
    }

    pub fn shed(&self, why: Shed) {
        let code = match why {
            Shed::Memory => 1,
            Shed::Deadline => 2,
        };
        if self
            .shed
            .compare_exchange(0, code, Relaxed, Relaxed)
            .is_ok()
        {
            self.shed_notify.notify_one();
        }
    }

    pub fn shed_reason(&self) -> Option<Shed> {
        match self.shed.load(Relaxed) {
            1 => Some(Shed::Memory),
            2 => Some(Shed::Deadline),
            _ => None,
        }
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let unfinished = self.unfinished.load(Relaxed) * UNFINISHED_FACTOR;
        self.budget
            .held
            .fetch_sub(CONNECTION_CHARGE + unfinished, Relaxed);
    }
}

/// Follows the WebSocket frames of a client's byte stream (RFC 6455 §5.2)
/// to know how much of a data message has arrived and not yet completed.
/// Control frames (ping, pong, close) may come between the fragments of a
/// message and don't end it.
#[derive(Default)]
pub struct FrameTracker {
    header: [u8; 14],
    have: usize,
    /// Payload bytes left in the current frame, if inside one.
    remaining: Option<u64>,
    frame_is_data: bool,
    frame_fin: bool,
    /// Payload bytes of the unfinished data message so far.
    pub message_bytes: u64,
    pub in_message: bool,
}

impl FrameTracker {
    /// Bytes as they arrive; returns whether a message started (Some(true))
    /// or completed (Some(false)) within them (the last such change).
    pub fn feed(&mut self, mut bytes: &[u8]) -> Option<bool> {
        let mut change = None;
        while !bytes.is_empty() {
            match self.remaining {
                None => {
                    self.header[self.have] = bytes[0];
                    self.have += 1;
                    bytes = &bytes[1..];
                    if let Some(len) = self.header_done() {
                        let opcode = self.header[0] & 0x0f;
                        self.frame_fin = self.header[0] & 0x80 != 0;
                        self.frame_is_data = opcode < 8;
                        if self.frame_is_data && !self.in_message {
                            self.in_message = true;
                            self.message_bytes = 0;
                            change = Some(true);
                        }
                        self.have = 0;
                        self.remaining = Some(len);
                        if len == 0 {
                            change = self.end_frame().or(change);
                        }
                    }
                }
                Some(left) => {
                    let n = (bytes.len() as u64).min(left);
                    if self.frame_is_data {
                        self.message_bytes += n;
                    }
                    bytes = &bytes[n as usize..];
                    self.remaining = Some(left - n);
                    if left == n {
                        change = self.end_frame().or(change);
                    }
                }
            }
        }
        change
    }

    /// The payload length once the header is complete.
    fn header_done(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let masked = self.header[1] & 0x80 != 0;
        let short = u64::from(self.header[1] & 0x7f);
        let extra = match short {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let need = 2 + extra + if masked { 4 } else { 0 };
        if self.have < need {
            return None;
        }
        Some(match short {
            126 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
            127 => u64::from_be_bytes(self.header[2..10].try_into().unwrap_or([0xff; 8])),
            n => n,
        })
    }

    fn end_frame(&mut self) -> Option<bool> {
        self.remaining = None;
        if self.frame_is_data && self.frame_fin {
            self.in_message = false;
            self.message_bytes = 0;
            return Some(false);
        }
        None
    }
}

/// The client's byte stream, watched by a [`FrameTracker`] that charges the
/// unfinished message to the connection's [`Account`].
pub struct CountingIo<S> {
    inner: S,
    tracker: FrameTracker,
    account: Arc<Account>,
}

impl<S> CountingIo<S> {
    pub fn new(inner: S, account: Arc<Account>) -> Self {
        CountingIo {
            inner,
            tracker: FrameTracker::default(),
            account,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let this = &mut *self;
            let change = this.tracker.feed(&buf.filled()[before..]);
            if let Some(started) = change {
                this.account.mark_unfinished(started);
            }
            let bytes = if this.tracker.in_message {
                this.tracker.message_bytes as usize
            } else {
                0
            };
            this.account.set_unfinished(bytes);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Sizes are parsed in one place for every flag: [`crate::config::parse_size`].
pub use crate::config::parse_size;

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, with `payload` bytes of payload.
    fn frame(opcode: u8, fin: bool, payload: usize) -> Vec<u8> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&[1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(b'x', payload));
        f
    }

    #[test]
    fn fragments_and_interleaved_pongs_keep_a_message_open() {
        let mut t = FrameTracker::default();
        assert_eq!(t.feed(&frame(1, false, 70_000)), Some(true));
        assert!(t.in_message);
        assert_eq!(t.message_bytes, 70_000);
        // A pong between fragments doesn't end the message.
        assert_eq!(t.feed(&frame(0xA, true, 4)), None);
        assert!(t.in_message);
        assert_eq!(t.feed(&frame(0, false, 1000)), None);
        assert_eq!(t.message_bytes, 71_000);
        assert_eq!(t.feed(&frame(0, true, 10)), Some(false));
        assert!(!t.in_message);
        assert_eq!(t.message_bytes, 0);
    }

    #[test]
    fn byte_by_byte_and_small_messages() {
        let mut t = FrameTracker::default();
        let f = frame(1, false, 300);
        for b in &f[..f.len() - 1] {
            t.feed(std::slice::from_ref(b));
        }
        assert!(t.in_message);
        assert_eq!(t.message_bytes, 299);
        t.feed(&f[f.len() - 1..]);
        t.feed(&frame(0, true, 0));
        assert!(!t.in_message);
        // Whole small messages come and go.
        for _ in 0..10 {
            t.feed(&frame(1, true, 50));
            assert!(!t.in_message);
        }
    }

    #[test]
    fn accounts_charge_and_release() {
        let metrics = Arc::new(Metrics::default());
        let budget = Budget::new(10 << 20, metrics);
        let a = budget.admit().unwrap();
        assert_eq!(budget.used(), CONNECTION_CHARGE);
        a.set_unfinished(1 << 20);
        assert_eq!(budget.used(), CONNECTION_CHARGE + (2 << 20));
        a.set_unfinished(0);
        drop(a);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn over_the_budget_the_biggest_unfinished_message_goes_first() {
        let metrics = Arc::new(Metrics::default());
        let budget = Budget::new(4 << 20, metrics);
        let quiet = budget.admit().unwrap();
        let small = budget.admit().unwrap();
        let big = budget.admit().unwrap();
        small.set_unfinished(100 << 10);
        big.set_unfinished(2 << 20);
        assert!(budget.used() > budget.limit());
        assert!(
            budget.admit().is_none(),
            "no new connections over the budget"
        );
        assert_eq!(budget.enforce(), 1);
        assert_eq!(big.shed_reason(), Some(Shed::Memory));
        assert!(small.shed_reason().is_none() && quiet.shed_reason().is_none());
        // Until the shed connection has let go, checking again sheds no
        // one else: its memory is as good as freed.
        assert!(budget.used() > budget.limit());
        assert_eq!(budget.enforce(), 0);
        assert!(small.shed_reason().is_none());
    }

    #[tokio::test]
    async fn going_over_the_limit_wakes_the_checker() {
        let budget = Budget::new(1 << 20, Arc::new(Metrics::default()));
        let a = budget.admit().unwrap();
        a.set_unfinished(100 << 10);
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(50), budget.over_limit());
        assert!(quiet.await.is_err(), "under the limit: no wake-up");
        a.set_unfinished(1 << 20);
        tokio::time::timeout(std::time::Duration::from_secs(5), budget.over_limit())
            .await
            .expect("over the limit: woken");
    }

    #[test]
    fn unfinished_messages_past_the_deadline_are_closed() {
        let budget = Budget::new(64 << 20, Arc::new(Metrics::default()));
        let slow = budget.admit().unwrap();
        let fine = budget.admit().unwrap();
        slow.mark_unfinished(true);
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert_eq!(
            budget.expire_unfinished(std::time::Duration::from_millis(10)),
            1
        );
        assert_eq!(slow.shed_reason(), Some(Shed::Deadline));
        assert!(fine.shed_reason().is_none());
    }
}
