//! StreamFlow client: end-to-end encrypted, terminal-first video calls.
//!
//! The binary (`src/main.rs`) parses with [`cli`] and runs [`commands`]. The sans-I/O cores
//! ([`crypto`], [`room`]) are driven by tasks at the edges ([`session`],
//! [`net`], [`media`]) and shown by [`tui`] or [`headless`].

pub use streamflow_core::{crypto, invite, room, sanitize, wordlist};

pub mod bench;
pub mod cli;
pub mod commands;
pub mod config_file;
pub mod headless;
pub mod identity;
pub mod media;
pub mod net;
pub mod session;
pub mod share;
pub mod tui;
pub mod web;
