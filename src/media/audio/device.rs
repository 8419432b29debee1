//! Sound devices through cpal (ALSA): the microphone as an [`AudioSource`],
//! the speaker as a sink, and the list `streamflow devices` prints.
//!
//! cpal's streams must stay on the thread that made them, so each device
//! gets a small thread that owns its stream and hands samples through a
//! queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::resample::{downmix, Resampler};
use super::source::{AudioSource, Captured, Pacer};
use super::{FRAME, RATE};

/// The names `--audio-source mic:NAME` and `--audio-sink speaker:NAME`
/// match (a case-insensitive part of the name is enough).
pub struct DeviceList {
    pub microphones: Vec<String>,
    pub speakers: Vec<String>,
    pub default_microphone: Option<String>,
    pub default_speaker: Option<String>,
}

pub fn list() -> DeviceList {
    quiet_alsa();
    let host = cpal::default_host();
    let names = |devices: Option<Vec<cpal::Device>>| -> Vec<String> {
        devices
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.name().ok())
            .collect()
    };
    DeviceList {
        microphones: names(host.input_devices().ok().map(Iterator::collect)),
        speakers: names(host.output_devices().ok().map(Iterator::collect)),
        default_microphone: host.default_input_device().and_then(|d| d.name().ok()),
        default_speaker: host.default_output_device().and_then(|d| d.name().ok()),
    }
}

/// True when a capture device can actually be opened (the default `mic`).
pub fn has_microphone() -> bool {
    quiet_alsa();
    cpal::default_host()
        .default_input_device()
        .is_some_and(|d| d.default_input_config().is_ok())
}

/// True when a playback device can actually be opened.
pub fn has_speaker() -> bool {
    quiet_alsa();
    cpal::default_host()
        .default_output_device()
        .is_some_and(|d| d.default_output_config().is_ok())
}

fn find(input: bool, name: Option<&str>) -> Result<cpal::Device, String> {
    quiet_alsa();
    let host = cpal::default_host();
    let what = if input { "microphone" } else { "speaker" };
    match name {
        None => if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        }
        .ok_or_else(|| format!("no {what} found (`streamflow devices` lists what there is)")),
        Some(want) => {
            let devices: Vec<cpal::Device> = if input {
                host.input_devices()
                    .map(Iterator::collect)
                    .unwrap_or_default()
            } else {
                host.output_devices()
                    .map(Iterator::collect)
                    .unwrap_or_default()
            };
            let want_lower = want.to_lowercase();
            devices
                .into_iter()
                .find(|d| {
                    d.name()
                        .is_ok_and(|n| n.to_lowercase().contains(&want_lower))
                })
                .ok_or_else(|| {
                    format!("no {what} named like {want:?} (`streamflow devices` lists them)")
                })
        }
    }
}

/// Converts whatever sample type the device uses to f32.
fn to_f32(data: &cpal::Data) -> Vec<f32> {
    use cpal::Sample as _;
    if let Some(s) = data.as_slice::<f32>() {
        s.to_vec()
    } else if let Some(s) = data.as_slice::<i16>() {
        s.iter().map(|v| v.to_sample::<f32>()).collect()
    } else if let Some(s) = data.as_slice::<i32>() {
        s.iter().map(|v| v.to_sample::<f32>()).collect()
    } else if let Some(s) = data.as_slice::<u16>() {
        s.iter().map(|v| v.to_sample::<f32>()).collect()
    } else {
        Vec::new()
    }
}

/// A capture device as 20 ms frames at 48 kHz mono.
pub struct Microphone {
    samples: mpsc::Receiver<Vec<f32>>,
    resampler: Resampler,
    channels: usize,
    pacer: Pacer,
    stop: Arc<AtomicBool>,
}

/// On a device's own thread: starts the stream, says whether it did, and
/// keeps it alive until `stop` (cpal streams can't move between threads).
fn hold_stream(
    built: Result<cpal::Stream, cpal::BuildStreamError>,
    shown: &str,
    ready: &mpsc::Sender<Result<(), String>>,
    stop: &AtomicBool,
) {
    let stream = match built {
        Ok(s) => match s.play() {
            Ok(()) => s,
            Err(e) => {
                let _ = ready.send(Err(format!("{shown} would not play: {e}")));
                return;
            }
        },
        Err(e) => {
            let _ = ready.send(Err(format!("{shown}: {e}")));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(stream);
}

impl Microphone {
    pub fn open(name: Option<&str>) -> Result<Self, String> {
        let device = find(true, name)?;
        let shown = device.name().unwrap_or_else(|_| "microphone".into());
        let config = device
            .default_input_config()
            .map_err(|e| format!("{shown}: {e}"))?;
        let (rate, channels, format) = (
            config.sample_rate().0,
            config.channels() as usize,
            config.sample_format(),
        );
        let (tx, rx) = mpsc::sync_channel::<Vec<f32>>(64);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_thread = stop.clone();
        std::thread::Builder::new()
            .name("microphone".into())
            .spawn(move || {
                let stream = device.build_input_stream_raw(
                    &config.into(),
                    format,
                    move |data: &cpal::Data, _: &cpal::InputCallbackInfo| {
                        let _ = tx.try_send(to_f32(data));
                    },
                    |e| tracing::warn!("microphone: {e}"),
                    None,
                );
                hold_stream(stream, &shown, &ready_tx, &stop_thread);
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the microphone did not start".to_string())??;
        Ok(Microphone {
            samples: rx,
            resampler: Resampler::new(rate, RATE)?,
            channels,
            pacer: Pacer::default(),
            stop,
        })
    }
}

impl Drop for Microphone {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

impl AudioSource for Microphone {
    fn next_frame(&mut self) -> Result<Captured, String> {
        while self.resampler.available() < FRAME {
            let chunk = self
                .samples
                .recv_timeout(Duration::from_secs(2))
                .map_err(|_| "the microphone stopped delivering sound".to_string())?;
            self.resampler.push(&downmix(&chunk, self.channels));
        }
        let samples = super::frame_from(&self.resampler.take(FRAME));
        // Stamped on a steady 20 ms grid (as receivers expect), which the
        // device's own clock keeps close to real time.
        let timestamp_us = self.pacer.stamp();
        Ok(Captured {
            samples,
            timestamp_us,
        })
    }

    fn is_mic(&self) -> bool {
        true
    }
}

/// A playback device fed 48 kHz mono blocks.
pub struct Speaker {
    queue: Arc<Mutex<VecDeque<f32>>>,
    resampler: Resampler,
    channels: usize,
    /// Most samples (device rate × channels) buffered before the oldest go.
    limit: usize,
    stop: Arc<AtomicBool>,
}

impl Speaker {
    pub fn open(name: Option<&str>) -> Result<Self, String> {
        let device = find(false, name)?;
        let shown = device.name().unwrap_or_else(|_| "speaker".into());
        let config = device
            .default_output_config()
            .map_err(|e| format!("{shown}: {e}"))?;
        let (rate, channels) = (config.sample_rate().0, config.channels() as usize);
        if config.sample_format() != cpal::SampleFormat::F32
            && config.sample_format() != cpal::SampleFormat::I16
        {
            return Err(format!(
                "{shown}: unsupported sample format {}",
                config.sample_format()
            ));
        }
        let format = config.sample_format();
        let queue = Arc::new(Mutex::new(VecDeque::<f32>::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let stop = Arc::new(AtomicBool::new(false));
        let (q, stop_thread) = (queue.clone(), stop.clone());
        std::thread::Builder::new()
            .name("speaker".into())
            .spawn(move || {
                let fill = move |out: &mut cpal::Data| {
                    let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(o) = out.as_slice_mut::<f32>() {
                        for s in o {
                            *s = q.pop_front().unwrap_or(0.0);
                        }
                    } else if let Some(o) = out.as_slice_mut::<i16>() {
                        for s in o {
                            *s = (q.pop_front().unwrap_or(0.0) * 32767.0) as i16;
                        }
                    }
                };
                let stream = device.build_output_stream_raw(
                    &config.into(),
                    format,
                    move |data: &mut cpal::Data, _: &cpal::OutputCallbackInfo| fill(data),
                    |e| tracing::warn!("speaker: {e}"),
                    None,
                );
                hold_stream(stream, &shown, &ready_tx, &stop_thread);
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the speaker did not start".to_string())??;
        Ok(Speaker {
            queue,
            resampler: Resampler::new(RATE, rate)?,
            channels,
            limit: rate as usize * channels / 5,
            stop,
        })
    }

    /// Queues a block; if the device has fallen 200 ms behind, the oldest
    /// sound goes.
    pub fn play(&mut self, block: &[f32]) {
        self.resampler.push(block);
        let ready = self.resampler.take_all();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        for s in ready {
            for _ in 0..self.channels {
                q.push_back(s);
            }
        }
        while q.len() > self.limit {
            q.pop_front();
        }
    }
}

impl Drop for Speaker {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// ALSA prints its errors (e.g. "cannot find card '0'" on a machine
/// without sound) straight to stderr, over our TUI: silence them. Our own
/// messages say what matters.
fn quiet_alsa() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        type Fixed = unsafe extern "C" fn(
            *const std::os::raw::c_char,
            std::os::raw::c_int,
            *const std::os::raw::c_char,
            std::os::raw::c_int,
            *const std::os::raw::c_char,
        );
        type Variadic = unsafe extern "C" fn(
            *const std::os::raw::c_char,
            std::os::raw::c_int,
            *const std::os::raw::c_char,
            std::os::raw::c_int,
            *const std::os::raw::c_char,
            ...
        );
        // SAFETY: ALSA calls the handler as a variadic C function. Rust
        // can't define one on stable, so `silent` takes the fixed
        // arguments only and never reads the variadic ones; on the Linux C
        // ABIs (x86-64 SysV, AArch64) the fixed arguments are passed the
        // same way either way, and the callee ignoring extra ones is sound.
        unsafe {
            let handler = std::mem::transmute::<Fixed, Variadic>(silent);
            alsa_sys::snd_lib_error_set_handler(Some(handler));
        }
    });
}

unsafe extern "C" fn silent(
    _file: *const std::os::raw::c_char,
    _line: std::os::raw::c_int,
    _function: *const std::os::raw::c_char,
    _err: std::os::raw::c_int,
    _fmt: *const std::os::raw::c_char,
) {
}
