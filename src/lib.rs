//! StreamFlow client: end-to-end encrypted, terminal-first video calls.
//!
//! The binary (`src/main.rs`) is a thin shell over [`cli`]. The sans-I/O cores
//! ([`crypto`], [`room`]) are driven by tasks at the edges.

pub mod cli;
pub mod crypto;
pub mod invite;
pub mod room;
pub mod wordlist;
