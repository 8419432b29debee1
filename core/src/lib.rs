//! StreamFlow's core, with no I/O: the room state machine, its crypto and
//! the wire types. The terminal client drives it with tokio; the same code
//! builds for `wasm32-unknown-unknown`, for a browser to drive. Without the
//! default `room` feature it is only the relay protocol's types, which the
//! relay shares.

pub mod jpeg;
pub mod payload;
pub mod protocol;

#[cfg(feature = "room")]
pub mod crypto;
#[cfg(feature = "room")]
pub mod invite;
#[cfg(feature = "room")]
pub mod room;
#[cfg(feature = "room")]
pub mod sanitize;
#[cfg(feature = "room")]
pub mod time;
#[cfg(feature = "room")]
pub mod wordlist;
