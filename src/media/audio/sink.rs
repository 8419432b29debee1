//! Where the mix goes: the speaker, a WAV recording of exactly what this
//! member would hear (in real time), or nowhere.

use std::path::PathBuf;
use std::str::FromStr;

use super::BLOCK;

/// `--audio-sink`: `speaker[:NAME]`, `none` or a WAV file to record into.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioSinkSpec {
    Speaker(Option<String>),
    None,
    File(PathBuf),
}

impl FromStr for AudioSinkSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s.split_once(':') {
            _ if s == "speaker" => AudioSinkSpec::Speaker(None),
            _ if s == "none" => AudioSinkSpec::None,
            Some(("speaker", name)) if !name.is_empty() => {
                AudioSinkSpec::Speaker(Some(name.into()))
            }
            _ if s.is_empty() => return Err("empty audio sink: speaker, none or FILE.wav".into()),
            _ => AudioSinkSpec::File(PathBuf::from(s)),
        })
    }
}

pub trait AudioSink: Send {
    /// One 10 ms block of the mix, in real time.
    fn write(&mut self, block: &[f32; BLOCK]) -> Result<(), String>;
}

/// Opens a sink (None for `none`); problems are said before the call.
pub fn open(spec: &AudioSinkSpec) -> Result<Option<Box<dyn AudioSink>>, String> {
    Ok(match spec {
        AudioSinkSpec::None => None,
        AudioSinkSpec::File(path) => Some(Box::new(super::wav::Recorder::create(path)?)),
        #[cfg(target_os = "linux")]
        AudioSinkSpec::Speaker(name) => {
            Some(Box::new(super::device::Speaker::open(name.as_deref())?))
        }
        #[cfg(not(target_os = "linux"))]
        AudioSinkSpec::Speaker(_) => return Err("speakers are supported on Linux only".into()),
    })
}

impl AudioSink for super::wav::Recorder {
    fn write(&mut self, block: &[f32; BLOCK]) -> Result<(), String> {
        super::wav::Recorder::write(self, block)
    }
}

#[cfg(target_os = "linux")]
impl AudioSink for super::device::Speaker {
    fn write(&mut self, block: &[f32; BLOCK]) -> Result<(), String> {
        self.play(block);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("speaker".parse(), Ok(AudioSinkSpec::Speaker(None)));
        assert_eq!(
            "speaker:HDMI".parse(),
            Ok(AudioSinkSpec::Speaker(Some("HDMI".into())))
        );
        assert_eq!("none".parse(), Ok(AudioSinkSpec::None));
        assert_eq!("out.wav".parse(), Ok(AudioSinkSpec::File("out.wav".into())));
        assert!("".parse::<AudioSinkSpec>().is_err());
    }
}
