//! `bench tty --via ssh`: the demo inside `ssh -t`, through real OpenSSH.
//!
//! An `sshd` of our own on loopback (its own host key, config and
//! authorized key, in a temporary directory), a shaping proxy in front of
//! it (the link), and tmux as the user's terminal: it runs `ssh`, answers
//! the app's queries itself, and pipes what it receives to a file the
//! observer follows. Keys go in with `tmux send-keys`.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::observer::Observer;
use super::{drive, FarEnd, Trial, TrialResult};
use crate::bench::shaper::{LinkSpec, Shaper};

/// Where Debian puts the OpenSSH server.
const SSHD: &str = "/usr/sbin/sshd";

pub fn run_trial(t: &Trial) -> anyhow::Result<TrialResult> {
    let dir = TempDir::new("ssh")?;
    let sshd = Sshd::start(dir.path())?;
    let shaper = Shaper::start(
        sshd.addr,
        LinkSpec::new(t.rate, t.delay),
        LinkSpec::new(0.0, t.delay),
    )?;
    let trace = dir.path().join("trace");
    let pane_out = dir.path().join("pane.out");
    let mut remote = format!(
        "env COLORTERM=truecolor STREAMFLOW_TTY_TRACE={} ",
        shell_quote(&trace.to_string_lossy())
    );
    for (k, v) in &t.env {
        remote.push_str(&format!("{k}={} ", shell_quote(v)));
    }
    // The exit status, into a file (this is loopback): tmux doesn't always
    // know how the pane's process ended.
    let status_file = dir.path().join("exit_status");
    let demo: Vec<String> = t.demo_args().iter().map(|a| shell_quote(a)).collect();
    remote.push_str(&format!(
        "{} {}; echo $? > {}",
        shell_quote(&t.binary.to_string_lossy()),
        demo.join(" "),
        shell_quote(&status_file.to_string_lossy())
    ));
    let ssh = format!(
        "sleep 0.5; exec ssh -t -F /dev/null -i {key} -p {port} -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes {user}@127.0.0.1 {remote}",
        key = shell_quote(&sshd.client_key.to_string_lossy()),
        port = shaper.addr.port(),
        user = user()?,
        remote = shell_quote(&remote),
    );
    let tmux = Tmux::start(t.cols, t.rows, &ssh)?;
    tmux.run(&[
        "pipe-pane",
        "-O",
        "-t",
        "bench",
        &format!("cat >> {}", shell_quote(&pane_out.to_string_lossy())),
    ])?;
    let mut far = TmuxEnd {
        tmux,
        status_file,
        out: pane_out,
        file: None,
        exited: None,
        last_bytes: Instant::now(),
    };
    let result = drive(t, &mut far, &trace);
    drop(sshd);
    result
}

/// tmux as the user's terminal: what it receives is piped to `out`.
struct TmuxEnd {
    tmux: Tmux,
    /// Where the remote shell writes the demo's exit status.
    status_file: PathBuf,
    out: PathBuf,
    file: Option<std::fs::File>,
    exited: Option<bool>,
    /// When bytes last arrived (the pipe lags the pane a little).
    last_bytes: Instant,
}

impl FarEnd for TmuxEnd {
    fn step(&mut self, obs: &mut Observer, now: Instant, measuring: bool) -> anyhow::Result<()> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.out).ok();
        }
        if let Some(f) = &mut self.file {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                // tmux answered the queries itself.
                obs.deliver(&buf[..n], now, measuring);
                self.last_bytes = now;
            }
        }
        Ok(())
    }

    fn press(&mut self, key: &[u8], _now: Instant) -> anyhow::Result<()> {
        let named = match key {
            b"\t" => Some("Tab"),
            b"\x1b" => Some("Escape"),
            b"\x7f" => Some("BSpace"),
            _ => None,
        };
        match named {
            Some(k) => self.tmux.run(&["send-keys", "-t", "bench", k])?,
            None => self.tmux.run(&[
                "send-keys",
                "-t",
                "bench",
                "-l",
                &String::from_utf8_lossy(key),
            ])?,
        };
        Ok(())
    }

    fn exited(&mut self) -> anyhow::Result<Option<bool>> {
        if self.exited.is_none() {
            if let Ok(status) = std::fs::read_to_string(&self.status_file) {
                if status.ends_with('\n') {
                    self.exited = Some(status.trim() == "0");
                }
            }
        }
        Ok(self.exited)
    }

    fn drained(&self) -> bool {
        // ssh has exited and the pipe has been quiet for a moment.
        self.exited.is_some() && self.last_bytes.elapsed() >= Duration::from_millis(300)
    }
}

/// A tmux server of our own running one session, `bench`.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(cols: u16, rows: u16, command: &str) -> anyhow::Result<Tmux> {
        let tmux = Tmux {
            socket: format!(
                "sf-bench-{}-{}",
                std::process::id(),
                crate::media::capture::now_us()
            ),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            "bench",
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
            "-e",
            "COLORTERM=truecolor",
            command,
        ])
        .context("tmux is needed as the terminal (apt-get install tmux)")?;
        tmux.run(&["set-option", "-t", "bench", "remain-on-exit", "on"])?;
        Ok(tmux)
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!(
                "tmux {}: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// An sshd of our own on a free loopback port, accepting one key.
pub struct Sshd {
    child: Child,
    pub addr: SocketAddr,
    pub client_key: PathBuf,
}

impl Sshd {
    pub fn start(dir: &Path) -> anyhow::Result<Sshd> {
        if !Path::new(SSHD).exists() {
            bail!("{SSHD} is missing: install the OpenSSH server (apt-get install openssh-server; scripts/install-deps does)");
        }
        if !can_run_sshd() {
            bail!("this sshd of our own must run as root: `ssh -t` needs it to hand the session a terminal (chown of /dev/pts)");
        }
        let host_key = dir.join("host_key");
        let client_key = dir.join("client_key");
        for key in [&host_key, &client_key] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(key)
                .stdout(Stdio::null())
                .status()
                .context("ssh-keygen (openssh-client) is needed")?;
            if !status.success() {
                bail!("ssh-keygen failed");
            }
        }
        let authorized = dir.join("authorized_keys");
        std::fs::copy(dir.join("client_key.pub"), &authorized)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nPrintMotd no\nPrintLastLog no\n\
                 LogLevel ERROR\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display()
            ),
        )?;
        // As root, sshd wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {SSHD}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut sshd = Sshd {
            child,
            addr,
            client_key,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if let Some(status) = sshd.child.try_wait()? {
                let mut err = String::new();
                if let Some(e) = &mut sshd.child.stderr {
                    let _ = e.read_to_string(&mut err);
                }
                bail!("sshd exited ({status}): {}", err.trim());
            }
            if Instant::now() > deadline {
                bail!("sshd did not listen on {addr} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(sshd)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!(
            "streamflow-{tag}-{}-{}",
            std::process::id(),
            crate::media::capture::now_us()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Our own sshd can give `ssh -t` a terminal only when it runs as root.
pub fn can_run_sshd() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn user() -> anyhow::Result<String> {
    let out = Command::new("id").arg("-un").output()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if name.is_empty() {
        bail!("cannot tell the current user's name");
    }
    Ok(name)
}

/// Single-quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
