//! Text from others (peers' names and chat, the relay's errors and close
//! reasons) is hostile: an escape sequence in it could retitle the
//! terminal, clear the screen or hide text. Everything such text goes
//! through [`clean`] where it enters, before any output path sees it.

/// Replaces control characters (C0, DEL, C1) and the bidirectional
/// overrides and isolates (which reorder what is shown) with U+FFFD, so
/// tampering stays visible. Newlines and tabs become spaces: everywhere
/// this text goes is one line.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() || is_bidi_control(c) => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// A self-chosen name: [`clean`], and the middle dot that joins a name to
/// its tag (`alice·3f2a`), with the dots that look like it, made a plain
/// full stop, so no name can pass for another member's tagged one.
pub fn clean_name(text: &str) -> String {
    clean(text)
        .chars()
        .map(|c| match c {
            '\u{00B7}' | '\u{0387}' | '\u{2022}' | '\u{2027}' | '\u{2219}' | '\u{22C5}'
            | '\u{30FB}' | '\u{FF65}' | '\u{1427}' | '\u{16EB}' | '\u{2E31}' | '\u{A78F}' => '.',
            c => c,
        })
        .collect()
}

/// Like [`clean`], for text that may run long: at most `max` characters.
pub fn clean_truncated(text: &str, max: usize) -> String {
    let mut out = clean(text);
    if let Some((cut, _)) = out.char_indices().nth(max) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No name can carry a tag of its own: `alice·2f19` (or with a dot
    /// that looks the same) is `alice.2f19`.
    #[test]
    fn names_cannot_pose_as_tagged_names() {
        assert_eq!(clean_name("alice·2f19"), "alice.2f19");
        assert_eq!(clean_name("alice•2f19"), "alice.2f19");
        assert_eq!(clean_name("alice\u{22C5}2f19"), "alice.2f19");
        assert_eq!(clean_name("Ana María"), "Ana María");
    }

    #[test]
    fn escapes_and_overrides_are_neutralised() {
        assert_eq!(clean("hi\x1b]0;owned\x07"), "hi\u{FFFD}]0;owned\u{FFFD}");
        assert_eq!(clean("a\u{9b}2J"), "a\u{FFFD}2J");
        assert_eq!(clean("evil\u{202E}txt.exe"), "evil\u{FFFD}txt.exe");
        assert_eq!(clean("two\nlines\r\tok"), "two lines  ok");
        assert_eq!(clean("héllo 👋 日本"), "héllo 👋 日本");
        assert!(!clean(&(0u8..=255).map(char::from).collect::<String>())
            .chars()
            .any(|c| c.is_control()));
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(clean_truncated("abcdef", 3), "abc…");
        assert_eq!(clean_truncated("日本語", 5), "日本語");
    }
}
