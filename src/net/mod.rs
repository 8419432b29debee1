//! The client's side of the wire: one WebSocket link to a relay, and the
//! reconnect schedule.

pub mod backoff;
pub mod link;
pub mod pacer;
pub mod socket;
pub mod tls;
