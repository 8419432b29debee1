//! Invites: `ROOM-SECRET`, e.g. `k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift`.
//!
//! ROOM is the relay's room id (a nameplate, not secret): 16 characters of
//! lowercase Crockford base32 by default, or a name the user picks. SECRET is
//! 5 words from the EFF long list (64 bits); it derives the room key and never
//! reaches the relay.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::wordlist;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
pub const ROOM_LEN: usize = 16;
pub const SECRET_WORDS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("the invite is empty")]
    Empty,
    #[error("an invite is ROOM-SECRET with a secret of at least 2 words, e.g. k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift")]
    TooFewWords,
    #[error("room names are 1-64 characters of a-z 0-9 _ (no hyphen: it separates the words of an invite)")]
    BadRoom,
}

/// A parsed invite. The secret is zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct Invite {
    room: String,
    secret: Zeroizing<String>,
}

impl fmt::Debug for Invite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invite")
            .field("room", &self.room)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Lowercase, NFKC-normalised words, split on whitespace or hyphens. The
/// intermediate copies of the secret are wiped as they go.
fn normalized_words(text: &str) -> Vec<String> {
    let nfkc: Zeroizing<String> = Zeroizing::new(text.nfkc().collect());
    let normal: Zeroizing<String> = Zeroizing::new(nfkc.to_lowercase());
    normal
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Validates a room name for use inside an invite.
pub fn validate_room_name(room: &str) -> Result<String, InviteError> {
    let room = room.trim().nfkc().collect::<String>().to_lowercase();
    let ok = !room.is_empty()
        && room.len() <= 64
        && room
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(room)
    } else {
        Err(InviteError::BadRoom)
    }
}

impl Invite {
    /// A fresh invite: random room nameplate (80 bits) and 5 random words.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        Self::generate_in_room(random_room(rng), rng)
    }

    /// Fresh secret words for a room named by the user.
    pub fn generate_in_room(room: String, rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let words = wordlist::words();
        let secret: Vec<&str> = (0..SECRET_WORDS)
            .map(|_| words[uniform(rng, words.len() as u32) as usize])
            .collect();
        Invite {
            room,
            secret: Zeroizing::new(secret.join("-")),
        }
    }

    /// Parses `ROOM-SECRET`. Returns the invite and any warnings for the user
    /// (words outside the list: accepted, but the secret may be weak).
    pub fn parse(text: &str) -> Result<(Invite, Vec<String>), InviteError> {
        let words = Zeroizing::new(normalized_words(text));
        let (room, secret) = words.split_first().ok_or(InviteError::Empty)?;
        let room = validate_room_name(room)?;
        Self::from_parts(room, secret)
    }

    /// `--room NAME` with a separately typed SECRET.
    pub fn with_room(room: &str, secret: &str) -> Result<(Invite, Vec<String>), InviteError> {
        let room = validate_room_name(room)?;
        let words = Zeroizing::new(normalized_words(secret));
        if words.is_empty() {
            return Err(InviteError::Empty);
        }
        Self::from_parts(room, &words)
    }

    fn from_parts(room: String, secret: &[String]) -> Result<(Invite, Vec<String>), InviteError> {
        if secret.len() < 2 {
            return Err(InviteError::TooFewWords);
        }
        let mut warnings = Vec::new();
        // Which words, by position, so a typo can be found and fixed: the
        // user's own terminal, where they typed them.
        let unknown: Vec<String> = secret
            .iter()
            .enumerate()
            .filter(|(_, w)| !wordlist::contains(w))
            .map(|(i, w)| format!("word {} ({w:?})", i + 1))
            .collect();
        if secret.len() != SECRET_WORDS && !unknown.is_empty() {
            warnings.push(format!(
                "invites have {SECRET_WORDS} secret words, this has {}",
                secret.len()
            ));
        }
        if !unknown.is_empty() {
            let (verb, which) = match unknown.len() {
                1 => ("is", unknown[0].clone()),
                _ => ("are", unknown.join(", ")),
            };
            warnings.push(format!(
                "{which} {verb} not in StreamFlow's word list: a typo? \
                 The passphrase is accepted as typed, but a made-up one may be weak \
                 (`streamflow invite` makes a strong one)."
            ));
        } else if secret.len() < SECRET_WORDS {
            warnings.push(format!(
                "a {}-word secret is weaker than the {SECRET_WORDS} words StreamFlow generates",
                secret.len()
            ));
        }
        Ok((
            Invite {
                room,
                secret: Zeroizing::new(secret.join("-")),
            },
            warnings,
        ))
    }

    /// The room id the relay sees.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The normalised secret (words joined by `-`), input to the room key.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// `ROOM-SECRET`, for sharing. Deliberately not `Display`, so it is never
    /// formatted into a log by accident.
    pub fn to_shareable(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}-{}", self.room, self.secret.as_str()))
    }
}

pub fn random_room(rng: &mut impl rand_core::CryptoRngCore) -> String {
    (0..ROOM_LEN)
        .map(|_| CROCKFORD[uniform(rng, 32) as usize] as char)
        .collect()
}

/// Uniform in `0..n` by rejection sampling (no modulo bias).
fn uniform(rng: &mut impl rand_core::CryptoRngCore, n: u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let v = rng.next_u32();
        if v < zone {
            return v % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn generated_invites_have_the_documented_shape_and_parse_back() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        for _ in 0..50 {
            let inv = Invite::generate(&mut rng);
            assert_eq!(inv.room().len(), ROOM_LEN);
            assert!(inv.room().bytes().all(|b| CROCKFORD.contains(&b)));
            assert_eq!(inv.secret().split('-').count(), SECRET_WORDS);
            let shared = inv.to_shareable();
            let (back, warnings) = Invite::parse(&shared).unwrap();
            assert!(warnings.is_empty());
            assert_eq!(back.room(), inv.room());
            assert_eq!(back.secret(), inv.secret());
        }
    }

    #[test]
    fn normalisation() {
        let canonical = Invite::parse("k7f3m2q9xw4hd8ta-orbit-velvet-canyon-maple-drift")
            .unwrap()
            .0;
        for variant in [
            "  K7F3M2Q9XW4HD8TA orbit Velvet  canyon-maple\tdrift \n",
            "k7f3m2q9xw4hd8ta--orbit-velvet-canyon-maple-drift",
            // Fullwidth letters fold under NFKC.
            "k7f3m2q9xw4hd8ta-ｏｒｂｉｔ-velvet-canyon-maple-drift",
        ] {
            let (inv, _) = Invite::parse(variant).unwrap();
            assert_eq!(inv.room(), canonical.room(), "{variant}");
            assert_eq!(inv.secret(), canonical.secret(), "{variant}");
        }
    }

    #[test]
    fn unknown_words_warn_but_are_accepted() {
        let (inv, warnings) = Invite::parse("standup-correct-horse-battery-staplez").unwrap();
        assert_eq!(inv.room(), "standup");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("invites have 5 secret words, this has 4"));
        assert!(
            warnings[1].contains("horse") && warnings[1].contains("not in StreamFlow's word list")
        );
    }

    #[test]
    fn empty_and_one_word_secrets_are_errors() {
        assert_eq!(Invite::parse("").unwrap_err(), InviteError::Empty);
        assert_eq!(Invite::parse("   ").unwrap_err(), InviteError::Empty);
        assert_eq!(Invite::parse("room").unwrap_err(), InviteError::TooFewWords);
        assert_eq!(
            Invite::parse("room-word").unwrap_err(),
            InviteError::TooFewWords
        );
        assert_eq!(
            Invite::with_room("team", "").unwrap_err(),
            InviteError::Empty
        );
        assert_eq!(
            Invite::with_room("team", "single").unwrap_err(),
            InviteError::TooFewWords
        );
        assert!(Invite::with_room("team", "two words").is_ok());
        assert_eq!(
            Invite::with_room("my team", "a b").unwrap_err(),
            InviteError::BadRoom
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let (inv, _) = Invite::parse("room-orbit-velvet-canyon-maple-drift").unwrap();
        let shown = format!("{inv:?}");
        assert!(shown.contains("room") && !shown.contains("velvet"));
    }

    #[test]
    fn mistyped_words_are_named_and_counted() {
        let (_, w) = Invite::parse("room-acorn-velvit-canyon-banjo-drift").unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("word 2 (\"velvit\") is not"), "{w:?}");
        let (_, w) = Invite::parse("room-acorn-velvit-canyun-banjo-drift-drift").unwrap();
        assert!(
            w[0].contains("invites have 5 secret words, this has 6"),
            "{w:?}"
        );
        assert!(
            w[1].contains("word 2 (\"velvit\"), word 3 (\"canyun\")"),
            "{w:?}"
        );
        assert!(w[1].contains(" are not"), "{w:?}");
    }
}
