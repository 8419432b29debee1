//! One sender's receive side: packets in, 10 ms blocks out, as late as the
//! link needs and no later.
//!
//! The playout delay (capture time → played) adapts to the measured
//! transit times: the 99th percentile of the last two seconds plus a small
//! margin, so a good link gets ~25–30 ms and a jittery one more. (At the
//! 95th, one packet in twenty comes too late by design and is concealed:
//! audible, on a thin link where video bursts delay voice now and then.) The first
//! sample is placed at exactly that delay (not at the next block boundary).
//! When the delay should grow, a concealment frame is inserted at once
//! (else packets come too late); when it may shrink, it does so gently:
//! the target falls slowly after a peak (a burst of late packets tends to
//! come back), and a packet is skipped only in a pause in the speech
//! (unless far behind). Every skip and stretch in the middle of a word is
//! heard. A packet missing
//! when its turn comes is concealed by Opus (and counted lost); if it
//! comes later it is counted late and dropped. Sans-I/O: the caller gives
//! the times.

use std::collections::{BTreeMap, VecDeque};

use super::codec::Decoder;
use super::{BLOCK, BLOCK_US, FRAME, FRAME_US, RATE};

/// Transit samples kept: two seconds of packets.
const WINDOW: usize = 100;
/// The percentile of recent transit times played at.
const PERCENTILE: usize = 99;
/// Added to that transit.
const MARGIN_US: i64 = 5_000;
/// Skip a packet when the delay exceeds the target by this much (in a
/// pause in the speech)...
const SKIP_ABOVE_US: i64 = 30_000;
/// ...or by this much whatever is being said.
const SKIP_ANYWAY_ABOVE_US: i64 = 120_000;
/// Quieter than this, the last block was a pause: a skip there is unheard.
const PAUSE_DBFS: f32 = -40.0;
/// After a peak, the target falls this fast (µs per second).
const DECAY_US_PER_S: i64 = 40_000;
/// Insert concealment when the delay falls short of the target by this
/// much (small: every ms short is packets arriving too late).
const STRETCH_BELOW_US: i64 = 3_000;
/// Longest delay we adapt to (beyond it, voice is useless in a call).
const MAX_EXTRA_US: i64 = 400_000;
/// Packets held at most (two seconds).
const MAX_PACKETS: usize = 100;
/// No packet for this long: the sender stopped; play nothing.
const IDLE_US: i64 = 300_000;
/// Blocks between two adaptation steps (the queue ahead must play first).
const ADAPT_COOLDOWN_BLOCKS: u32 = 6;
/// A concealed packet still missing this many packets later is lost.
const LOST_AFTER_PACKETS: u64 = 10;

struct Packet {
    ts: i64,
    opus: Vec<u8>,
    muted: bool,
}

/// Decoded audio waiting to be played.
struct Segment {
    samples: Vec<f32>,
    /// Capture time of the first sample.
    ts: i64,
    pos: usize,
    /// Concealment inserted to grow the delay (not a sender's frame).
    filler: bool,
}

/// What a sender's stream did since the last report.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Counters {
    pub received: u64,
    pub lost: u64,
    pub concealed: u64,
    pub late: u64,
    pub skipped: u64,
}

pub struct JitterBuffer {
    packets: BTreeMap<u64, Packet>,
    last_ext: Option<u64>,
    /// Packets concealed because they weren't here in time.
    missing: VecDeque<u64>,
    /// Next packet to decode; None until playout starts.
    next: Option<u64>,
    next_ts: i64,
    queue: VecDeque<Segment>,
    transits: VecDeque<i64>,
    /// A floor under the delay (lip sync with slower video), µs.
    floor_us: i64,
    last_arrival: i64,
    /// Capture time of the audio played last (for lip sync).
    playing_ts: Option<i64>,
    /// Delay of the last real audio played, µs.
    delay_us: i64,
    muted: bool,
    level_dbfs: f32,
    counters: Counters,
    /// Blocks until the next adaptation step may be taken.
    cooldown: u32,
    /// The target shrinking is judged against: the peak, decaying.
    held: Option<(i64, i64)>,
    /// Packets received so far, up to [`SETTLED_PACKETS`].
    seen: usize,
}

/// The first second of a stream is forgotten once it has passed: its
/// transit times include the moments the call was starting (handshakes,
/// a busy machine), and held as a peak they would keep the delay high for
/// many seconds.
const SETTLED_PACKETS: usize = 50;

impl Default for JitterBuffer {
    fn default() -> Self {
        JitterBuffer {
            packets: BTreeMap::new(),
            last_ext: None,
            missing: VecDeque::new(),
            next: None,
            next_ts: 0,
            queue: VecDeque::new(),
            transits: VecDeque::new(),
            floor_us: 0,
            last_arrival: 0,
            playing_ts: None,
            delay_us: 0,
            muted: false,
            level_dbfs: -100.0,
            counters: Counters::default(),
            cooldown: 0,
            held: None,
            seen: 0,
        }
    }
}

impl JitterBuffer {
    /// A packet arrived at `arrival_us` (our clock; `ts_us` is the sender's).
    pub fn push(&mut self, seq: u16, ts_us: u64, opus: &[u8], muted: bool, arrival_us: u64) {
        let ext = self.extend(seq);
        let (ts, arrival) = (ts_us as i64, arrival_us as i64);
        self.last_arrival = arrival;
        if self.packets.contains_key(&ext) {
            return; // a duplicate (replays are stopped before this)
        }
        self.counters.received += 1;
        if self.seen < SETTLED_PACKETS {
            self.seen += 1;
            if self.seen == SETTLED_PACKETS {
                let keep = self.transits.len().saturating_sub(SETTLED_PACKETS / 2);
                self.transits.drain(..keep);
                self.held = None;
            }
        }
        // Late packets count most: they are what the delay must cover.
        self.transits.push_back(arrival - ts);
        if self.transits.len() > WINDOW {
            self.transits.pop_front();
        }
        if self.next.is_some_and(|n| ext < n) {
            self.counters.late += 1;
            if let Some(i) = self.missing.iter().position(|m| *m == ext) {
                self.missing.remove(i);
            }
            return;
        }
        self.packets.insert(
            ext,
            Packet {
                ts,
                opus: opus.to_vec(),
                muted,
            },
        );
        while self.packets.len() > MAX_PACKETS {
            self.packets.pop_first();
            self.counters.skipped += 1;
        }
    }

    /// Sequence numbers are 16 bits; unwrap them against the last one.
    fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.last_ext {
            None => (1 << 32) + u64::from(seq),
            Some(last) => {
                let diff = seq.wrapping_sub(last as u16) as i16;
                last.wrapping_add_signed(i64::from(diff))
            }
        };
        if self.last_ext.is_none_or(|l| ext > l) {
            self.last_ext = Some(ext);
        }
        ext
    }

    /// The delay to play at: capture time + this = play time (µs; may be
    /// negative against a sender whose clock runs ahead of ours).
    pub fn target_us(&self) -> i64 {
        if self.transits.is_empty() {
            return MARGIN_US;
        }
        let mut sorted: Vec<i64> = self.transits.iter().copied().collect();
        sorted.sort_unstable();
        let low = sorted[0];
        let high = sorted[(sorted.len() - 1) * PERCENTILE / 100];
        (high + MARGIN_US).max(self.floor_us.min(low + MAX_EXTRA_US))
    }

    /// Spread of transit times (the percentile played at − minimum), µs.
    pub fn jitter_us(&self) -> i64 {
        let Some(&low) = self.transits.iter().min() else {
            return 0;
        };
        let mut sorted: Vec<i64> = self.transits.iter().copied().collect();
        sorted.sort_unstable();
        sorted[(sorted.len() - 1) * PERCENTILE / 100] - low
    }

    /// Holds the delay at least this long (lip sync); 0 lifts it.
    pub fn set_floor_us(&mut self, floor: i64) {
        self.floor_us = floor;
    }

    /// The next 10 ms, to be played from `block_us` on (our clock).
    pub fn pull(&mut self, block_us: u64, decoder: &mut Decoder) -> [f32; BLOCK] {
        let block = block_us as i64;
        let mut out = [0.0; BLOCK];
        if self.next.is_none() && !self.start(block) {
            self.level_dbfs = -100.0;
            return out;
        }
        if self.packets.is_empty() && block - self.last_arrival > IDLE_US && self.queued() < BLOCK {
            // The sender stopped (left, or lost its source): stop too, and
            // start afresh when packets come again.
            self.next = None;
            self.queue.clear();
            self.missing.clear();
            self.playing_ts = None;
            self.level_dbfs = -100.0;
            return out;
        }
        while self.queued() < BLOCK {
            self.decode_next(decoder);
        }
        self.adapt(block, decoder);
        let mut filled = 0;
        while filled < BLOCK {
            let Some(seg) = self.queue.front_mut() else {
                break;
            };
            let n = (seg.samples.len() - seg.pos).min(BLOCK - filled);
            out[filled..filled + n].copy_from_slice(&seg.samples[seg.pos..seg.pos + n]);
            if !seg.filler {
                let ts = seg.ts + (seg.pos as i64 * 1_000_000) / i64::from(RATE);
                self.playing_ts = Some(ts);
                self.delay_us = block + (filled as i64 * 1_000_000) / i64::from(RATE) - ts;
            }
            seg.pos += n;
            filled += n;
            if seg.pos == seg.samples.len() {
                self.queue.pop_front();
            }
        }
        self.level_dbfs = super::level_dbfs(&out);
        out
    }

    /// Starts playout if the first packet is due within this block, with
    /// leading silence so its first sample lands at exactly its time.
    fn start(&mut self, block: i64) -> bool {
        let Some((&ext, first)) = self.packets.first_key_value() else {
            return false;
        };
        let play_at = first.ts + self.target_us();
        if play_at >= block + BLOCK_US as i64 {
            return false;
        }
        let lead = ((play_at - block).max(0) * i64::from(RATE) / 1_000_000) as usize;
        if lead > 0 {
            self.queue.push_back(Segment {
                samples: vec![0.0; lead.min(BLOCK)],
                ts: first.ts,
                pos: 0,
                filler: true,
            });
        }
        self.next = Some(ext);
        self.next_ts = first.ts;
        true
    }

    fn queued(&self) -> usize {
        self.queue.iter().map(|s| s.samples.len() - s.pos).sum()
    }

    /// Decodes the next packet into the queue, or conceals it if missing.
    fn decode_next(&mut self, decoder: &mut Decoder) {
        let Some(ext) = self.next else { return };
        let (samples, ts) = match self.packets.remove(&ext) {
            Some(p) => {
                self.muted = p.muted;
                let (frame, ok) = decoder.decode(&p.opus);
                if !ok {
                    self.counters.concealed += 1;
                }
                (frame, p.ts)
            }
            None => {
                // Concealed now; lost if it still hasn't come a while later
                // (if it comes, it is counted late instead).
                self.missing.push_back(ext);
                self.counters.concealed += 1;
                (decoder.conceal(), self.next_ts)
            }
        };
        self.queue.push_back(Segment {
            samples: samples.to_vec(),
            ts,
            pos: 0,
            filler: false,
        });
        self.next = Some(ext + 1);
        self.next_ts = ts + FRAME_US as i64;
        while self
            .missing
            .front()
            .is_some_and(|m| m + LOST_AFTER_PACKETS < ext)
        {
            self.missing.pop_front();
            self.counters.lost += 1;
        }
    }

    /// Moves the delay toward the target: one step per block at most.
    fn adapt(&mut self, block: i64, decoder: &mut Decoder) {
        // A step shows in the measured delay only once the queue ahead of
        // it has played: wait that long before judging again.
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return;
        }
        let Some(head) = self.queue.iter().find(|s| !s.filler) else {
            return;
        };
        let delay = block - (head.ts + (head.pos as i64 * 1_000_000) / i64::from(RATE));
        let target = self.target_us();
        // Shrinking is judged against the recent peak, falling slowly.
        let held = match self.held {
            Some((peak, at)) => {
                let decayed = peak - (block - at) * DECAY_US_PER_S / 1_000_000;
                if target >= decayed {
                    (target, block)
                } else {
                    (peak, at)
                }
            }
            None => (target, block),
        };
        self.held = Some(held);
        let held_target = (held.0 - (block - held.1) * DECAY_US_PER_S / 1_000_000).max(target);
        let pause = self.level_dbfs < PAUSE_DBFS;
        let over = delay - held_target;
        if (over > SKIP_ANYWAY_ABOVE_US || (over > SKIP_ABOVE_US && pause))
            && self.packets.len() >= 2
        {
            if let Some(ext) = self.next {
                if self.packets.remove(&ext).is_some() {
                    self.counters.skipped += 1;
                }
                self.next = Some(ext + 1);
                self.next_ts += FRAME_US as i64;
                self.cooldown = ADAPT_COOLDOWN_BLOCKS;
            }
        } else if delay + STRETCH_BELOW_US < target {
            self.cooldown = ADAPT_COOLDOWN_BLOCKS;
            self.counters.concealed += 1;
            let short = ((target - delay) * i64::from(RATE) / 1_000_000) as usize;
            self.queue.push_back(Segment {
                samples: decoder.conceal_samples(short),
                ts: self.next_ts,
                pos: 0,
                filler: true,
            });
        }
    }

    /// Counters since the last call (and resets them).
    pub fn take_counters(&mut self) -> Counters {
        std::mem::take(&mut self.counters)
    }

    /// Capture time (sender's clock) of the audio played last.
    pub fn playing_ts(&self) -> Option<i64> {
        self.playing_ts
    }

    /// Capture → played, for the audio played last (µs).
    pub fn delay_us(&self) -> i64 {
        self.delay_us
    }

    pub fn muted(&self) -> bool {
        self.muted
    }

    /// Level of the last block played (dBFS).
    pub fn level_dbfs(&self) -> f32 {
        self.level_dbfs
    }
}

// FRAME is what a packet decodes to; the queue works in samples.
const _: () = assert!(FRAME == 2 * BLOCK);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::audio::codec::{Encoder, PACKET_BYTES};

    /// Packets of a 20 ms sender, each `transit(n)` µs in flight; pulls a
    /// block every 10 ms. Returns the buffer after `frames` frames.
    fn run(
        frames: u64,
        transit: impl Fn(u64) -> i64,
        drop: impl Fn(u64) -> bool,
    ) -> (JitterBuffer, Vec<i64>) {
        let mut enc = Encoder::new().unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut jb = JitterBuffer::default();
        let t0: i64 = 1_000_000_000;
        let mut arrivals: Vec<(i64, u64, Vec<u8>)> = (0..frames)
            .filter(|n| !drop(*n))
            .map(|n| {
                let ts = t0 + n as i64 * FRAME_US as i64;
                let frame = [0.1f32; FRAME];
                (
                    ts + FRAME_US as i64 + transit(n),
                    n,
                    enc.encode(&frame).unwrap(),
                )
            })
            .collect();
        arrivals.sort_by_key(|a| a.0);
        let mut delays = Vec::new();
        let mut i = 0;
        let mut block = t0;
        while block < t0 + (frames as i64 + 10) * FRAME_US as i64 {
            while i < arrivals.len() && arrivals[i].0 <= block {
                let (_, n, ref opus) = arrivals[i];
                jb.push(
                    n as u16,
                    (t0 + n as i64 * FRAME_US as i64) as u64,
                    opus,
                    false,
                    block as u64,
                );
                i += 1;
            }
            jb.pull(block as u64, &mut dec);
            if jb.playing_ts().is_some() {
                delays.push(jb.delay_us());
            }
            block += BLOCK_US as i64;
        }
        assert_eq!(PACKET_BYTES, 60);
        (jb, delays)
    }

    #[test]
    fn a_steady_link_plays_everything_with_a_small_delay() {
        let (mut jb, delays) = run(200, |_| 1_000, |_| false);
        let c = jb.take_counters();
        assert_eq!(c.received, 200);
        assert_eq!(c.lost, 0);
        assert_eq!(c.skipped, 0);
        // 20 ms frame + 1 ms transit + margin, give or take a block.
        let median = {
            let mut d = delays.clone();
            d.sort_unstable();
            d[d.len() / 2]
        };
        assert!((20_000..=40_000).contains(&median), "{median}");
    }

    #[test]
    fn a_lost_packet_is_concealed_and_counted() {
        let (mut jb, _) = run(100, |_| 1_000, |n| n == 50);
        let c = jb.take_counters();
        assert_eq!(c.received, 99);
        assert_eq!(c.lost, 1);
        assert!(c.concealed >= 1);
    }

    #[test]
    fn jitter_raises_the_delay_and_keeps_losses_low() {
        // Transit 1..41 ms, pseudo-random.
        let (mut jb, delays) = run(300, |n| 1_000 + ((n * 7919) % 41) as i64 * 1_000, |_| false);
        let c = jb.take_counters();
        assert!(jb.jitter_us() >= 30_000, "{} {c:?}", jb.jitter_us());
        // After the first window, late packets are rare.
        assert!(c.late + c.lost <= 15, "{c:?}");
        let tail = &delays[delays.len() / 2..];
        let min = tail.iter().min().unwrap();
        assert!(*min >= 40_000, "delay grew to cover the jitter: {min}");
    }

    #[test]
    fn a_floor_holds_audio_back_for_lip_sync() {
        let mut jb = JitterBuffer::default();
        jb.transits.extend([21_000; 10]);
        assert_eq!(jb.target_us(), 26_000);
        jb.set_floor_us(120_000);
        assert_eq!(jb.target_us(), 120_000);
        jb.set_floor_us(10_000_000);
        assert_eq!(jb.target_us(), 21_000 + MAX_EXTRA_US, "capped");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut jb = JitterBuffer::default();
        let a = jb.extend(65_534);
        let b = jb.extend(65_535);
        let c = jb.extend(0);
        let d = jb.extend(1);
        assert_eq!((b - a, c - b, d - c), (1, 1, 1));
        let old = jb.extend(65_535);
        assert_eq!(old, b);
    }

    /// A slow start (everything sent in the first 400 ms arrives at once,
    /// as when a busy machine sets the call up) doesn't hold the delay up
    /// for seconds: without forgetting it, the peak decays from 400 ms at
    /// 40 ms/s and the delay is still ~360 ms five seconds later.
    #[test]
    fn a_slow_start_is_forgotten() {
        let (_, delays) = run(300, |n| (400_000 - n as i64 * 20_000).max(1_000), |_| false);
        let late = &delays[delays.len() - 100..];
        let max = late.iter().max().unwrap();
        assert!(*max <= 200_000, "still {max} µs behind after 5 s");
    }
}
