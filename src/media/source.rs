//! Where our video comes from: the camera, the built-in test pattern, a file,
//! or nothing (view-only, e.g. an SSH host without a camera).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use image::RgbImage;

use super::pattern::TestPattern;
use super::{jpeg, scale};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Camera(u32),
    Test,
    None,
    /// An MJPEG stream (concatenated JPEGs) or a directory of JPEG files, looped.
    File(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "test" => SourceSpec::Test,
            "none" => SourceSpec::None,
            "camera" => SourceSpec::Camera(0),
            _ => match s.strip_prefix("camera:") {
                Some(n) => SourceSpec::Camera(
                    n.parse()
                        .map_err(|_| format!("camera index must be a number: {n:?}"))?,
                ),
                None if s.is_empty() => return Err("empty source".into()),
                None => SourceSpec::File(PathBuf::from(s)),
            },
        })
    }
}

impl std::fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Camera(n) => write!(f, "camera:{n}"),
            SourceSpec::Test => f.write_str("test"),
            SourceSpec::None => f.write_str("none"),
            SourceSpec::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Unavailable(String),
    #[error("camera stopped: {0}")]
    Failed(String),
}

/// A blocking producer of frames; the capture thread paces it.
pub trait FrameSource: Send {
    /// The next frame, scaled to fit in `max` pixels.
    fn next_frame(&mut self, max: (u32, u32)) -> Result<RgbImage, SourceError>;
}

/// Opens a source. `None` for `--source none`.
pub fn open(spec: &SourceSpec, name: &str) -> Result<Option<Box<dyn FrameSource>>, SourceError> {
    Ok(match spec {
        SourceSpec::None => None,
        SourceSpec::Test => Some(Box::new(TestPattern::new(name))),
        SourceSpec::File(path) => Some(Box::new(FileSource::open(path)?)),
        SourceSpec::Camera(index) => Some(camera::open(*index)?),
    })
}

impl FrameSource for TestPattern {
    fn next_frame(&mut self, max: (u32, u32)) -> Result<RgbImage, SourceError> {
        // Render straight at the target size, 5:3 like a terminal tile.
        let (w, h) = scale::fit((320, 192), max);
        Ok(self.render(w, h))
    }
}

/// Frames from a file: a directory of JPEGs (sorted by name) or one MJPEG
/// stream file. Loops forever.
pub struct FileSource {
    frames: Vec<Vec<u8>>,
    next: usize,
}

const MAX_FILE_BYTES: u64 = 512 << 20;

impl FileSource {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let unavailable = |what: String| SourceError::Unavailable(what);
        let meta = std::fs::metadata(path).map_err(|e| {
            unavailable(format!("cannot open video source {}: {e}", path.display()))
        })?;
        let frames = if meta.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| unavailable(format!("cannot list {}: {e}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                        x.eq_ignore_ascii_case("jpg") || x.eq_ignore_ascii_case("jpeg")
                    })
                })
                .collect();
            files.sort();
            files
                .iter()
                .filter_map(|f| std::fs::read(f).ok())
                .collect::<Vec<_>>()
        } else {
            if meta.len() > MAX_FILE_BYTES {
                return Err(unavailable(format!(
                    "{} is over {} MiB; use a shorter clip",
                    path.display(),
                    MAX_FILE_BYTES >> 20
                )));
            }
            let data = std::fs::read(path)
                .map_err(|e| unavailable(format!("cannot read {}: {e}", path.display())))?;
            split_mjpeg(&data)
        };
        let frames: Vec<Vec<u8>> = frames
            .into_iter()
            .filter(|f| jpeg::decode(f).is_ok())
            .collect();
        if frames.is_empty() {
            return Err(unavailable(format!(
                "no JPEG frames in {} (expected an MJPEG file or a directory of .jpg files)",
                path.display()
            )));
        }
        Ok(FileSource { frames, next: 0 })
    }
}

impl FrameSource for FileSource {
    fn next_frame(&mut self, max: (u32, u32)) -> Result<RgbImage, SourceError> {
        let bytes = &self.frames[self.next];
        self.next = (self.next + 1) % self.frames.len();
        let img = jpeg::decode(bytes).map_err(|e| SourceError::Failed(e.to_string()))?;
        Ok(scale::scale_to_fit(&img, max))
    }
}

/// Splits a stream of concatenated JPEGs at their SOI (FF D8) / EOI (FF D9) markers.
pub fn split_mjpeg(data: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 1 < data.len() {
        match (data[i], data[i + 1]) {
            (0xff, 0xd8) if start.is_none() => start = Some(i),
            (0xff, 0xd9) => {
                if let Some(s) = start.take() {
                    frames.push(data[s..i + 2].to_vec());
                }
            }
            _ => {}
        }
        i += 1;
    }
    frames
}

/// Converts packed YUYV (YUY2) to RGB.
pub fn yuyv_to_rgb(data: &[u8], width: u32, height: u32) -> Option<RgbImage> {
    let needed = width as usize * height as usize * 2;
    if data.len() < needed || width % 2 != 0 {
        return None;
    }
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    let px = |y: f32, u: f32, v: f32| {
        [
            (y + 1.402 * v).clamp(0.0, 255.0) as u8,
            (y - 0.344 * u - 0.714 * v).clamp(0.0, 255.0) as u8,
            (y + 1.772 * u).clamp(0.0, 255.0) as u8,
        ]
    };
    for chunk in data[..needed].chunks_exact(4) {
        let (y0, u, y1, v) = (
            f32::from(chunk[0]),
            f32::from(chunk[1]) - 128.0,
            f32::from(chunk[2]),
            f32::from(chunk[3]) - 128.0,
        );
        rgb.extend_from_slice(&px(y0, u, v));
        rgb.extend_from_slice(&px(y1, u, v));
    }
    RgbImage::from_raw(width, height, rgb)
}

#[cfg(target_os = "linux")]
mod camera {
    use super::*;
    use nokhwa::utils::{CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};

    const NO_CAMERA: &str = "no camera found; try `--source test` (a moving test pattern) or `--source none` (view only)";

    struct Camera(nokhwa::Camera);

    // nokhwa's V4L camera is used from the one capture thread only.
    unsafe impl Send for Camera {}

    pub fn open(index: u32) -> Result<Box<dyn FrameSource>, SourceError> {
        if !Path::new(&format!("/dev/video{index}")).exists() {
            return Err(SourceError::Unavailable(format!(
                "/dev/video{index} does not exist: {NO_CAMERA}"
            )));
        }
        let format = RequestedFormat::with_formats(
            RequestedFormatType::AbsoluteHighestFrameRate,
            &[FrameFormat::MJPEG, FrameFormat::YUYV],
        );
        let mut cam = nokhwa::Camera::new(CameraIndex::Index(index), format).map_err(|e| {
            SourceError::Unavailable(format!(
                "camera {index} could not be opened ({e}): {NO_CAMERA}"
            ))
        })?;
        cam.open_stream().map_err(|e| {
            SourceError::Unavailable(format!(
                "camera {index} would not stream ({e}): {NO_CAMERA}"
            ))
        })?;
        Ok(Box::new(Camera(cam)))
    }

    impl FrameSource for Camera {
        fn next_frame(&mut self, max: (u32, u32)) -> Result<RgbImage, SourceError> {
            let frame = self
                .0
                .frame()
                .map_err(|e| SourceError::Failed(e.to_string()))?;
            let res = frame.resolution();
            let img = match frame.source_frame_format() {
                FrameFormat::MJPEG => {
                    jpeg::decode(frame.buffer()).map_err(|e| SourceError::Failed(e.to_string()))?
                }
                FrameFormat::YUYV => yuyv_to_rgb(frame.buffer(), res.width(), res.height())
                    .ok_or_else(|| SourceError::Failed("short YUYV frame".into()))?,
                other => {
                    return Err(SourceError::Failed(format!(
                        "unsupported camera format {other}"
                    )))
                }
            };
            Ok(scale::scale_to_fit(&img, max))
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod camera {
    use super::*;

    pub fn open(_index: u32) -> Result<Box<dyn FrameSource>, SourceError> {
        Err(SourceError::Unavailable(
            "camera capture is supported on Linux only; try `--source test`".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!("test".parse(), Ok(SourceSpec::Test));
        assert_eq!("none".parse(), Ok(SourceSpec::None));
        assert_eq!("camera".parse(), Ok(SourceSpec::Camera(0)));
        assert_eq!("camera:2".parse(), Ok(SourceSpec::Camera(2)));
        assert!("camera:x".parse::<SourceSpec>().is_err());
        assert_eq!(
            "clip.mjpeg".parse(),
            Ok(SourceSpec::File(PathBuf::from("clip.mjpeg")))
        );
    }

    #[test]
    fn missing_camera_is_a_clear_error() {
        let err = match open(&SourceSpec::Camera(77), "me") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("no camera 77 here"),
        };
        assert!(err.contains("--source test"), "{err}");
    }

    #[test]
    fn mjpeg_file_and_directory_sources_loop() {
        let dir = std::env::temp_dir().join(format!("sf-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pattern = TestPattern::new("file");
        let mut stream = Vec::new();
        for i in 0..3 {
            let jpg = jpeg::encode(&pattern.render(64, 48), 70);
            std::fs::write(dir.join(format!("f{i}.jpg")), &jpg).unwrap();
            stream.extend_from_slice(&jpg);
        }
        let mjpeg = dir.join("clip.mjpeg");
        std::fs::write(&mjpeg, &stream).unwrap();
        assert_eq!(split_mjpeg(&stream).len(), 3);
        for spec in [SourceSpec::File(dir.clone()), SourceSpec::File(mjpeg)] {
            let mut src = open(&spec, "x").unwrap().unwrap();
            for _ in 0..7 {
                assert_eq!(src.next_frame((32, 24)).unwrap().dimensions(), (32, 24));
            }
        }
        assert!(FileSource::open(&dir.join("nope")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn yuyv_conversion() {
        // Two pixels of mid grey.
        let img = yuyv_to_rgb(&[128, 128, 128, 128], 2, 1).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [128, 128, 128]);
        assert!(yuyv_to_rgb(&[1, 2], 2, 1).is_none());
    }
}
