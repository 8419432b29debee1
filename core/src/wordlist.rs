//! The EFF long word list (CC BY 3.0 US, see data/eff_large_wordlist.LICENSE),
//! without its four hyphenated words: 7,772 words, 12.9 bits each. Used for
//! invite secrets and safety words.

use std::collections::HashSet;
use std::sync::OnceLock;

const RAW: &str = include_str!("../../data/eff_large_wordlist.txt");

pub fn words() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        RAW.lines()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .collect()
    })
}

pub fn contains(word: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| words().iter().copied().collect())
        .contains(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_the_eff_long_list_without_hyphens() {
        assert_eq!(words().len(), 7772);
        assert_eq!(words()[0], "abacus");
        assert!(words()
            .iter()
            .all(|w| w.bytes().all(|b| b.is_ascii_lowercase())));
        assert!(contains("velvet") && !contains("t-shirt") && !contains("zzz"));
    }
}
