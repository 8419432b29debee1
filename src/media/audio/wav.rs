//! WAV files: read (16-bit PCM, any common rate, mono or stereo) to 48 kHz
//! mono, and write a recording that stays valid if the process dies.

use std::path::Path;

use super::resample::{downmix, Resampler};
use super::RATE;

/// A WAV file as 48 kHz mono samples in −1..1.
pub fn read(path: &Path) -> Result<Vec<f32>, String> {
    let shown = path.display();
    let mut reader =
        hound::WavReader::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
        return Err(format!(
            "{shown}: only 16-bit PCM WAV is supported (this one is {}-bit {:?}); convert it with e.g. `sox IN -b 16 OUT.wav`",
            spec.bits_per_sample, spec.sample_format
        ));
    }
    if !(8_000..=192_000).contains(&spec.sample_rate) || !(1..=8).contains(&spec.channels) {
        return Err(format!(
            "{shown}: unusual format ({} Hz, {} channels)",
            spec.sample_rate, spec.channels
        ));
    }
    let samples: Result<Vec<f32>, _> = reader
        .samples::<i16>()
        .map(|s| s.map(|v| f32::from(v) / 32768.0))
        .collect();
    let samples = samples.map_err(|e| format!("{shown}: {e}"))?;
    let mono = downmix(&samples, spec.channels as usize);
    if mono.is_empty() {
        return Err(format!("{shown} holds no samples"));
    }
    let mut resampler = Resampler::new(spec.sample_rate, RATE)?;
    resampler.push(&mono);
    // Flush the resampler's tail with a little silence.
    resampler.push(&vec![0.0; spec.sample_rate as usize / 10]);
    Ok(resampler.take_all())
}

/// Writes `samples` as a 16-bit mono WAV at `rate` (for analysis tools).
pub fn write_at(path: &Path, samples: &[f32], rate: u32) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        writer.write_sample(v).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())
}

/// A 48 kHz mono 16-bit recording; the header is brought up to date after
/// every write, so the file is valid even if the process is killed.
pub struct Recorder {
    writer: hound::WavWriter<std::io::BufWriter<std::fs::File>>,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self, String> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(path, spec)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        writer
            .flush()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(Recorder { writer })
    }

    pub fn write(&mut self, samples: &[f32]) -> Result<(), String> {
        for s in samples {
            let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
            self.writer.write_sample(v).map_err(|e| e.to_string())?;
        }
        self.writer.flush().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_valid_without_finalizing_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("sf-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rec.wav");
        let mut rec = Recorder::create(&path).unwrap();
        let tone: Vec<f32> = (0..4800).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        rec.write(&tone).unwrap();
        // Not dropped, not finalized: as if the process were killed now.
        let back = read(&path).unwrap();
        std::mem::forget(rec);
        assert!(back.len() >= 4800);
        let err: f32 = tone
            .iter()
            .zip(&back)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-3, "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn other_formats_are_refused_with_a_hint() {
        let dir = std::env::temp_dir().join(format!("sf-wav8-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0.5f32).unwrap();
        w.finalize().unwrap();
        assert!(read(&path).unwrap_err().contains("16-bit"));
        assert!(read(&dir.join("missing.wav")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
