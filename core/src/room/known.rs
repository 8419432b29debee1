//! What a member's `known_peers` said of a peer's identity key (the
//! client keeps the file; the room only carries the answer).

/// What we knew of a peer's identity key when it arrived in this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Never seen before.
    New,
    /// In an earlier call.
    Seen,
    /// You compared the words with them.
    Verified,
    /// A name you know, with another key.
    Changed,
}

impl Known {
    pub fn as_str(self) -> &'static str {
        match self {
            Known::New => "new",
            Known::Seen => "seen",
            Known::Verified => "verified",
            Known::Changed => "changed",
        }
    }
}
