//! What sealed frames carry, stream by stream: receiver feedback here;
//! video payloads and state messages are the core's (a browser sends them
//! too).

pub use streamflow_core::payload::{state, video};

/// Receiver feedback (stream `Feedback`, once a second): for each sender
/// heard from, `id_len u8 | id | delay_ms u16 | received u16 | lost u16`.
pub mod feedback {
    use crate::media::adapt::ReceiverReport;

    pub fn encode(entries: &[(String, ReceiverReport)]) -> Vec<u8> {
        let mut out = vec![entries.len().min(255) as u8];
        for (id, r) in entries.iter().take(255) {
            let id = &id.as_bytes()[..id.len().min(64)];
            out.push(id.len() as u8);
            out.extend_from_slice(id);
            out.extend_from_slice(&(r.delay_ms.clamp(0.0, 65535.0) as u16).to_be_bytes());
            out.extend_from_slice(&(r.received.min(65535) as u16).to_be_bytes());
            out.extend_from_slice(&(r.lost.min(65535) as u16).to_be_bytes());
        }
        out
    }

    /// The entry about `me`, if the report has one.
    pub fn find(payload: &[u8], me: &str) -> Option<ReceiverReport> {
        let (&count, mut rest) = payload.split_first()?;
        for _ in 0..count {
            let (&len, tail) = rest.split_first()?;
            let (id, tail) = tail.split_at_checked(len as usize)?;
            let (nums, tail) = tail.split_at_checked(6)?;
            rest = tail;
            if id == me.as_bytes() {
                let n = |i: usize| u16::from_be_bytes([nums[i], nums[i + 1]]);
                return Some(ReceiverReport {
                    delay_ms: f64::from(n(0)),
                    received: u32::from(n(2)),
                    lost: u32::from(n(4)),
                });
            }
        }
        None
    }
}
