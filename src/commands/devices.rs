//! `streamflow devices`: what --source, --audio-source and --audio-sink
//! can name on this machine.

use std::process::ExitCode;

pub fn run() -> ExitCode {
    let cameras = cameras();
    println!("Cameras (--source camera:N):");
    if cameras.is_empty() {
        println!("  none found (use --source test or --source none)");
    }
    for (index, name) in cameras {
        println!("  camera:{index}  {name}");
    }
    print_audio();
    ExitCode::SUCCESS
}

/// /dev/videoN devices, with the name V4L gives them.
fn cameras() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for index in 0..64u32 {
        let sys = format!("/sys/class/video4linux/video{index}/name");
        if std::path::Path::new(&format!("/dev/video{index}")).exists() {
            let name = std::fs::read_to_string(&sys)
                .map(|n| crate::sanitize::clean(n.trim()))
                .unwrap_or_else(|_| format!("/dev/video{index}"));
            found.push((index, name));
        }
    }
    found
}

#[cfg(target_os = "linux")]
fn print_audio() {
    let list = crate::media::audio::device::list();
    let show = |title: &str, flag: &str, names: &[String], default: &Option<String>| {
        println!("{title}:");
        if names.is_empty() {
            println!("  none found ({flag})");
        }
        for n in names {
            let n = crate::sanitize::clean(n);
            let mark = if default.as_deref() == Some(n.as_str()) {
                "  (default)"
            } else {
                ""
            };
            println!("  {n}{mark}");
        }
    };
    show(
        "Microphones (--audio-source mic:NAME; part of the name will do)",
        "use --audio-source tone, a WAV file, or none",
        &list.microphones,
        &list.default_microphone,
    );
    show(
        "Speakers (--audio-sink speaker:NAME)",
        "use --audio-sink FILE.wav to record, or none",
        &list.speakers,
        &list.default_speaker,
    );
}

#[cfg(not(target_os = "linux"))]
fn print_audio() {
    println!("Microphones and speakers: supported on Linux only.");
}
