//! Video in and out: sources, JPEG, scaling, and the capture thread.

pub mod adapt;
pub mod audio;
pub mod capture;
pub mod font;
pub mod jpeg;
pub mod pattern;
pub mod scale;
pub mod source;
