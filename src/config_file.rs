//! `$XDG_CONFIG_HOME/streamflow/config.toml` (else `~/.config/…`): the
//! defaults a person would otherwise type every time. Flags win over the
//! environment (clap reads both into the same field), which wins over this
//! file, which wins over the built-in defaults.
//!
//! ```toml
//! name = "Ada"
//! relay = ["wss://relay.example.org", "ws://backup.example.org:8787"]
//! colour = "256"
//! cells = "sextant"
//! source = "camera:1"
//! audio_source = "mic:USB"
//! audio_sink = "speaker"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::{parse_relay_url, MediaArgs};
use crate::media::audio::sink::AudioSinkSpec;
use crate::media::audio::source::AudioSourceSpec;
use crate::media::source::SourceSpec;
use crate::tui::render::ColourMode;

/// Larger than any sensible config: refused rather than read.
const MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Option<String>,
    relay: Option<Relays>,
    colour: Option<String>,
    cells: Option<String>,
    source: Option<String>,
    audio_source: Option<String>,
    audio_sink: Option<String>,
}

/// `relay = "ws://…"` or a list, tried in order.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Relays {
    One(String),
    Many(Vec<String>),
}

/// The file's settings, checked with the same parsers as the flags.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub name: Option<String>,
    pub relays: Vec<String>,
    pub colour: Option<ColourMode>,
    pub cells: Option<crate::tui::cells::CellsChoice>,
    pub source: Option<SourceSpec>,
    pub audio_source: Option<AudioSourceSpec>,
    pub audio_sink: Option<AudioSinkSpec>,
}

/// Where the file is looked for.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("streamflow").join("config.toml"))
}

/// The file, if there is one. A file that exists but can't be used is an
/// error that names it (a setting silently ignored is worse).
pub fn load() -> Result<ConfigFile, String> {
    match path() {
        Some(p) if p.exists() => read(&p),
        _ => Ok(ConfigFile::default()),
    }
}

fn read(path: &Path) -> Result<ConfigFile, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let len = std::fs::metadata(path)
        .map_err(|e| at(e.to_string()))?
        .len();
    if len > MAX_BYTES {
        return Err(at(format!("larger than {MAX_BYTES} bytes")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    parse(&text).map_err(at)
}

pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let raw: Raw = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let field = |name: &str, e: String| format!("{name}: {e}");
    let relays = match raw.relay {
        None => Vec::new(),
        Some(Relays::One(r)) => vec![r],
        Some(Relays::Many(rs)) => rs,
    };
    Ok(ConfigFile {
        name: raw.name,
        relays: relays
            .iter()
            .map(|r| parse_relay_url(r).map_err(|e| field("relay", e)))
            .collect::<Result<_, _>>()?,
        colour: raw
            .colour
            .map(|c| <ColourMode as clap::ValueEnum>::from_str(&c, true))
            .transpose()
            .map_err(|_| field("colour", "one of truecolor, 256, 16, mono".into()))?,
        cells: raw
            .cells
            .map(|c| <crate::tui::cells::CellsChoice as clap::ValueEnum>::from_str(&c, true))
            .transpose()
            .map_err(|_| field("cells", "one of auto, half, quadrant, sextant".into()))?,
        source: raw
            .source
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| field("source", e))?,
        audio_source: raw
            .audio_source
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| field("audio_source", e))?,
        audio_sink: raw
            .audio_sink
            .map(|s| s.parse())
            .transpose()
            .map_err(|e| field("audio_sink", e))?,
    })
}

impl ConfigFile {
    /// Fills what the flags and environment left unset.
    pub fn fill_media(&self, media: &mut MediaArgs) {
        if media.name.is_none() {
            media.name.clone_from(&self.name);
        }
        if media.source.is_none() {
            media.source.clone_from(&self.source);
        }
        if media.audio_source.is_none() {
            media.audio_source.clone_from(&self.audio_source);
        }
        if media.audio_sink.is_none() {
            media.audio_sink.clone_from(&self.audio_sink);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_file_parses_with_the_flags_parsers() {
        let c = parse(
            r#"
name = "Ada"
relay = ["wss://relay.example.org", "ws://backup:8787"]
colour = "256"
audio_source = "tone:300"
audio_sink = "none"
"#,
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("Ada"));
        assert_eq!(c.relays.len(), 2);
        assert_eq!(c.colour, Some(ColourMode::Ansi256));
        assert!(matches!(c.audio_source, Some(AudioSourceSpec::Tone(_))));
        assert!(matches!(c.audio_sink, Some(AudioSinkSpec::None)));
        let one = parse("relay = \"ws://h:1\"").unwrap();
        assert_eq!(one.relays, vec!["ws://h:1".to_string()]);
    }

    #[test]
    fn mistakes_name_the_setting() {
        assert!(parse("relay = \"http://h\"")
            .unwrap_err()
            .starts_with("relay:"));
        assert!(parse("colour = \"pink\"")
            .unwrap_err()
            .starts_with("colour:"));
        assert!(parse("nmae = \"x\"").unwrap_err().contains("nmae"));
        assert!(parse("name = [").is_err());
    }

    #[test]
    fn flags_win_over_the_file() {
        let c = parse("name = \"File\"\naudio_sink = \"none\"").unwrap();
        let mut media = MediaArgs {
            name: Some("Flag".into()),
            source: None,
            fps: 30,
            fixed_quality: false,
            audio_source: None,
            audio_sink: None,
            no_voice_processing: false,
        };
        c.fill_media(&mut media);
        assert_eq!(media.name.as_deref(), Some("Flag"));
        assert!(matches!(media.audio_sink, Some(AudioSinkSpec::None)));
    }
}
