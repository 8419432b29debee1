//! A call with nothing to carry costs next to nothing: members without a
//! microphone or camera wait on events instead of spinning (a closed voice
//! channel once kept the call loop busy, a whole core per member).

mod common;

use std::time::Duration;

use common::{fresh_invite, relay, Client};

/// CPU time (user + system) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("comm ends") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat (11 and 12 after comm).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_secs_f64(ticks as f64 / per_second as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_without_voice_or_camera_sit_idle() {
    let relay = relay().await;
    let url = relay.url();
    let invite = fresh_invite();
    // No microphone, no camera: the common case of a server over SSH.
    let quiet = ["--source", "none"];
    let a = Client::spawn(&invite, &url, "Ada", &quiet);
    let b = Client::spawn(&invite, &url, "Bob", &quiet);
    for c in [&a, &b] {
        let verified = c.wait_for(Duration::from_secs(60), |e| e["type"] == "peer_verified");
        assert!(
            verified.is_some(),
            "the call did not come up: {}",
            c.stderr.lock().unwrap()
        );
    }
    let span = Duration::from_secs(4);
    let before: Vec<Duration> = [&a, &b].iter().map(|c| cpu_time(c.child.id())).collect();
    tokio::time::sleep(span).await;
    for (c, before) in [&a, &b].iter().zip(before) {
        let used = cpu_time(c.child.id()) - before;
        let share = used.as_secs_f64() / span.as_secs_f64();
        // Idle is about 1% of a core; a busy loop takes whatever a loaded
        // machine gives it (never less than a third of a core here).
        assert!(
            share < 0.15,
            "an idle member used {:.0}% of a core",
            share * 100.0
        );
    }
}
