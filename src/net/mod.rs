//! The client's side of the wire: one WebSocket link to a relay.

pub mod link;
