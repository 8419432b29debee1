//! Who you are across calls: the identity key in
//! `$XDG_CONFIG_HOME/streamflow/identity` (created on first use, mode
//! 0600, refused when others can read it, as ssh does), and what you know
//! of the people you have called ([`known`]).
//!
//! The file: a first line naming the format, then the key's 32-byte seed
//! in base64.

pub mod dates;
pub mod known;
#[cfg(test)]
mod known_redteam;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::crypto::identity::Fingerprint;
use crate::crypto::sign::SigningIdentity;

const HEADER: &str = "streamflow identity key v1 (Ed25519 seed, base64): keep it secret";
/// An identity file is a few dozen bytes: anything much larger isn't one.
const MAX_BYTES: u64 = 4096;

/// `$XDG_CONFIG_HOME/streamflow` (else `~/.config/streamflow`).
pub fn config_dir() -> Option<PathBuf> {
    crate::config_file::path().and_then(|p| p.parent().map(Path::to_path_buf))
}

pub fn identity_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("identity"))
}

pub fn known_peers_path() -> Option<PathBuf> {
    config_dir().map(|d| d.join("known_peers"))
}

/// The identity key, and whether this call created it.
pub struct Loaded {
    pub key: SigningIdentity,
    pub path: PathBuf,
    pub created: bool,
}

/// Reads the identity key, creating it on first use.
pub fn load_or_create() -> Result<Loaded, String> {
    let path = identity_path()
        .ok_or("no place for the identity key: set HOME or XDG_CONFIG_HOME (or use --anonymous)")?;
    match read(&path) {
        Ok(key) => Ok(Loaded {
            key,
            path,
            created: false,
        }),
        Err(ReadError::Missing) => {
            let key = SigningIdentity::generate(&mut rand_core::OsRng);
            match write_new(&path, &key) {
                Ok(()) => Ok(Loaded {
                    key,
                    path,
                    created: true,
                }),
                // Another streamflow made it at the same moment: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read(&path).map_err(|e| e.say(&path)).map(|key| Loaded {
                        key,
                        path,
                        created: false,
                    })
                }
                Err(e) => Err(format!("cannot create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(e.say(&path)),
    }
}

/// Replaces the identity key with a new one (`streamflow id --new`).
pub fn replace() -> Result<Loaded, String> {
    let path =
        identity_path().ok_or("no place for the identity key: set HOME or XDG_CONFIG_HOME")?;
    let key = SigningIdentity::generate(&mut rand_core::OsRng);
    let tmp = path.with_extension(format!("new.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, &key).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    Ok(Loaded {
        key,
        path,
        created: true,
    })
}

#[derive(Debug)]
enum ReadError {
    Missing,
    TooOpen(u32),
    Bad(String),
}

impl ReadError {
    fn say(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            ReadError::Missing => format!("{p} does not exist"),
            ReadError::TooOpen(mode) => format!(
                "permissions {mode:04o} for {p} are too open: others could read your identity key. \
                 Run `chmod 600 {p}` (and replace the key with `streamflow id --new` if someone may have copied it)"
            ),
            ReadError::Bad(why) => format!(
                "{p} is not a streamflow identity key ({why}); move it away to make a new one"
            ),
        }
    }
}

fn read(path: &Path) -> Result<SigningIdentity, ReadError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Bad(e.to_string())),
    };
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(ReadError::TooOpen(mode));
    }
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err(ReadError::Bad("not a small regular file".into()));
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).map_err(|e| ReadError::Bad(e.to_string()))?,
    );
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(ReadError::Bad("unknown first line".into()));
    }
    let seed = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(lines.next().unwrap_or("").trim())
            .map_err(|_| ReadError::Bad("the key is not base64".into()))?,
    );
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| ReadError::Bad("the key is not 32 bytes".into()))?;
    Ok(SigningIdentity::from_seed(seed))
}

/// Writes a new file (never over an existing one), mode 0600, in a
/// directory only we can enter.
fn write_new(path: &Path, key: &SigningIdentity) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    let seed = base64::engine::general_purpose::STANDARD.encode(key.seed().as_slice());
    let text = zeroize::Zeroizing::new(format!("{HEADER}\n{seed}\n"));
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// The warning when a name we know arrives with another identity key.
pub fn changed_warning(name: &str, previous: Option<&known::Previous>) -> String {
    let name = crate::sanitize::clean_truncated(name, 40);
    match previous {
        Some(p) if p.verified => format!(
            "{name}'s identity key is not the one you verified on {} — compare the safety words before trusting them",
            p.since
        ),
        Some(p) => format!(
            "{name}'s identity key is not the one first seen on {} — compare the safety words",
            p.since
        ),
        None => format!("{name}'s identity key changed — compare the safety words"),
    }
}

/// The same, short, for the tile (its label names the member).
pub fn changed_note(previous: Option<&known::Previous>) -> String {
    match previous {
        Some(p) if p.verified => format!(
            "not the key you verified on {} — compare the words",
            p.since
        ),
        Some(p) => format!("not the key first seen on {} — compare the words", p.since),
        None => "identity key changed — compare the words".into(),
    }
}

/// What `streamflow id` prints.
pub fn describe(key: &SigningIdentity, path: &Path) -> String {
    let fp = Fingerprint::of(&key.public());
    format!(
        "Your identity key: {}\n\n  words        {}\n  fingerprint  {}\n\n{}\n\n\
         Others see it only inside a call's encrypted channels, never the relay. After you \
         compare the safety words with someone in a call, press w twice (headless: {{\"type\":\"verify\"}}): \
         from then on they show as verified (✓✓), and you are warned if their key ever changes.\n",
        path.display(),
        fp.words(),
        fp.grouped(),
        fp.randomart()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_open_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("sf-id-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("streamflow").join("identity");
        let key = SigningIdentity::generate(&mut rand_core::OsRng);
        write_new(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(read(&path).unwrap().public(), key.public());
        // Never over an existing key.
        assert!(write_new(&path, &key).is_err());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, ReadError::TooOpen(0o644)), "{err:?}");
        assert!(err.say(&path).contains("chmod 600"), "{}", err.say(&path));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "junk\n").unwrap();
        assert!(matches!(read(&path), Err(ReadError::Bad(_))));
        assert!(matches!(read(&dir.join("none")), Err(ReadError::Missing)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
