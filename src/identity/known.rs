//! `$XDG_CONFIG_HOME/streamflow/known_peers`: the identity keys you have
//! been in calls with, in a plain text file a person can read and edit
//! (as ssh's `known_hosts`). One line per key:
//!
//! ```text
//! # fingerprint  state  since  first-seen  last-seen  name
//! 3f2a…(64 hex)  verified  2026-12-01  2026-11-20  2026-12-07  alice
//! ```
//!
//! States: `seen` (was in a call with you), `verified` (you compared the
//! safety words with them and said so), `changed` (arrived under a name
//! you knew with another key; stays so until you verify it or delete the
//! old line). Lines that aren't entries are kept as they are.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::dates;
use crate::crypto::identity::Fingerprint;

pub use crate::room::Known;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Seen,
    Verified,
    Changed,
}

impl Stored {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "seen" => Some(Stored::Seen),
            "verified" => Some(Stored::Verified),
            "changed" => Some(Stored::Changed),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Stored::Seen => "seen",
            Stored::Verified => "verified",
            Stored::Changed => "changed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    fingerprint: Fingerprint,
    state: Stored,
    /// When `state` was set.
    since: String,
    first_seen: String,
    last_seen: String,
    name: String,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let mut rest = line.trim();
        let mut field = || {
            let t = rest.trim_start();
            let end = t.find(char::is_whitespace).unwrap_or(t.len());
            let (f, r) = t.split_at(end);
            rest = r;
            f
        };
        let fingerprint = Fingerprint::parse_hex(&field().to_ascii_lowercase())?;
        let state = Stored::parse(field())?;
        let dates: Vec<String> = (0..3).map(|_| field().to_string()).collect();
        if !dates.iter().all(|d| dates::is_date(d)) {
            return None;
        }
        let name = rest.trim().to_string();
        let [since, first_seen, last_seen] = dates.try_into().ok()?;
        Some(Entry {
            fingerprint,
            state,
            since,
            first_seen,
            last_seen,
            name,
        })
    }

    fn render(&self) -> String {
        format!(
            "{}  {:<8}  {}  {}  {}  {}",
            self.fingerprint.hex(),
            self.state.as_str(),
            self.since,
            self.first_seen,
            self.last_seen,
            self.name
        )
    }
}

const HEADER: &str = "# streamflow known peers: one identity key a line; edit freely (delete a line to forget a key).\n\
# fingerprint (SHA-256, hex)                                       state     since       first-seen  last-seen   name";
/// A bigger file is refused (read as nothing, never written). We never
/// write one: `MAX_ENTRIES` lines of at most ~200 bytes are under 1 MiB;
/// the room is for a person's own notes.
const MAX_BYTES: u64 = 8 << 20;
/// Past this many keys, the least recently seen `seen` one goes.
const MAX_ENTRIES: usize = 4096;

#[derive(Debug, Clone)]
enum Line {
    Entry(Entry),
    Other(String),
}

/// The file's contents.
#[derive(Debug, Clone, Default)]
struct KnownPeers {
    lines: Vec<Line>,
}

impl KnownPeers {
    fn parse(text: &str) -> Self {
        let lines = text
            .lines()
            .map(|l| match Entry::parse(l) {
                Some(e) => Line::Entry(e),
                None => Line::Other(l.to_string()),
            })
            .collect();
        KnownPeers { lines }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if !self
            .lines
            .iter()
            .any(|l| matches!(l, Line::Other(t) if t.starts_with("# streamflow known peers")))
        {
            out.push_str(HEADER);
            out.push('\n');
        }
        for line in &self.lines {
            match line {
                Line::Entry(e) => out.push_str(&e.render()),
                Line::Other(t) => out.push_str(t),
            }
            out.push('\n');
        }
        out
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry(e) => Some(e),
            Line::Other(_) => None,
        })
    }

    fn find(&self, fp: &Fingerprint) -> Option<&Entry> {
        self.entries().find(|e| e.fingerprint == *fp)
    }

    /// Another key known under `name`: a verified one first, else the most
    /// recently seen.
    fn other_by_name(&self, name: &str, fp: &Fingerprint) -> Option<&Entry> {
        self.entries()
            .filter(|e| e.fingerprint != *fp && e.state != Stored::Changed && e.name == name)
            .max_by_key(|e| (e.state == Stored::Verified, e.last_seen.clone()))
    }

    fn upsert(&mut self, entry: Entry) {
        for line in &mut self.lines {
            if let Line::Entry(e) = line {
                if e.fingerprint == entry.fingerprint {
                    *e = entry;
                    return;
                }
            }
        }
        self.lines.push(Line::Entry(entry));
        if self.entries().count() > MAX_ENTRIES {
            let oldest = self
                .entries()
                .filter(|e| e.state == Stored::Seen)
                .min_by_key(|e| e.last_seen.clone())
                .map(|e| e.fingerprint);
            if let Some(fp) = oldest {
                self.lines
                    .retain(|l| !matches!(l, Line::Entry(e) if e.fingerprint == fp));
            }
        }
    }
}

/// The key a changed identity's name was known with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub fingerprint: Fingerprint,
    pub verified: bool,
    /// When it was verified, or first seen.
    pub since: String,
}

/// What a peer's arrival means to us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub known: Known,
    /// For `changed`: the key the name was known with.
    pub previous: Option<Previous>,
    /// A verified key under another name than the one it was verified
    /// under (names are self-chosen): the name it was verified as.
    pub known_as: Option<String>,
}

/// Known peers for one session: classifies each identity on each arrival
/// and rename against what the file said of it before this session (a
/// reconnect doesn't turn `new` into `seen`) and against the other keys
/// known under the same name; records what it learns, and writes the file
/// unless anonymous.
pub struct Trust {
    peers: KnownPeers,
    /// `None`: nothing is written (`--anonymous`, or no config dir).
    path: Option<PathBuf>,
    /// Each key's entry as it was before this session first saw it.
    before: HashMap<Fingerprint, Option<Entry>>,
    /// Entries this session changed (merged into the file as it is on
    /// disk when written: another streamflow may have written meanwhile).
    touched: HashSet<Fingerprint>,
}

/// Keys never seen before that one session records at most: an invite
/// holder reconnecting with fresh keys can't flush the file.
const MAX_NEW_PER_SESSION: usize = 256;

impl Trust {
    /// Nothing known, nothing written.
    pub fn in_memory() -> Self {
        Trust {
            peers: KnownPeers::default(),
            path: None,
            before: HashMap::new(),
            touched: HashSet::new(),
        }
    }

    /// The file at `path` (none yet is fine); written back only if `write`.
    pub fn load(path: PathBuf, write: bool) -> Result<Self, String> {
        let peers = read(&path)?;
        Ok(Trust {
            peers,
            path: write.then_some(path),
            before: HashMap::new(),
            touched: HashSet::new(),
        })
    }

    /// A member proved `identity` under `name` (on arrival, or a rename):
    /// what that means, recorded as seen today.
    pub fn arrived(&mut self, identity: &[u8; 32], name: &str) -> (Verdict, Result<(), String>) {
        let fp = Fingerprint::of(identity);
        let name = file_name(name);
        let today = dates::today();
        if !self.before.contains_key(&fp) {
            let new = self.before.values().filter(|e| e.is_none()).count();
            if self.peers.find(&fp).is_none() && new >= MAX_NEW_PER_SESSION {
                // Classified, not recorded.
                return (self.classify(&fp, &name, None), Ok(()));
            }
            self.before.insert(fp, self.peers.find(&fp).cloned());
        }
        let before = self.before.get(&fp).cloned().flatten();
        let verdict = self.classify(&fp, &name, before.as_ref());
        let entry = match self.peers.find(&fp) {
            Some(e) => Entry {
                last_seen: today.clone(),
                // A verified key keeps the name it was verified under; a
                // known key taking a name another key is known by stays
                // `changed` until verified.
                state: match (e.state, verdict.known) {
                    (Stored::Verified, _) => Stored::Verified,
                    (_, Known::Changed) => Stored::Changed,
                    (state, _) => state,
                },
                name: if e.state == Stored::Verified {
                    e.name.clone()
                } else {
                    name
                },
                ..e.clone()
            },
            None => Entry {
                fingerprint: fp,
                state: if verdict.known == Known::Changed {
                    Stored::Changed
                } else {
                    Stored::Seen
                },
                since: today.clone(),
                first_seen: today.clone(),
                last_seen: today,
                name,
            },
        };
        self.peers.upsert(entry);
        self.touched.insert(fp);
        (verdict, self.save())
    }

    /// `before`: the key's entry before this session.
    fn classify(&self, fp: &Fingerprint, name: &str, before: Option<&Entry>) -> Verdict {
        let other = self.peers.other_by_name(name, fp).map(|e| Previous {
            fingerprint: e.fingerprint,
            verified: e.state == Stored::Verified,
            since: if e.state == Stored::Verified {
                e.since.clone()
            } else {
                e.first_seen.clone()
            },
        });
        let verdict = |known, previous, known_as| Verdict {
            known,
            previous,
            known_as,
        };
        match before {
            // Known under this very name: what the file said (two people
            // may share a name; each known key is no news).
            Some(e) if e.name == name => match e.state {
                Stored::Verified => verdict(Known::Verified, None, None),
                // Changed until verified, or until the old key's line is gone.
                Stored::Changed if other.is_some() => verdict(Known::Changed, other, None),
                _ => verdict(Known::Seen, None, None),
            },
            // A name another key is known by: whatever this key is.
            _ if other.is_some() => verdict(Known::Changed, other, None),
            Some(e) if e.state == Stored::Verified => {
                verdict(Known::Verified, None, Some(e.name.clone()))
            }
            Some(_) => verdict(Known::Seen, None, None),
            None => verdict(Known::New, None, None),
        }
    }

    /// You compared the words with these members: their keys are
    /// verified from now on.
    pub fn verify(&mut self, members: &[([u8; 32], String)]) -> Result<(), String> {
        let today = dates::today();
        for (identity, name) in members {
            let fp = Fingerprint::of(identity);
            let entry = match self.peers.find(&fp) {
                Some(e) => Entry {
                    state: Stored::Verified,
                    since: today.clone(),
                    last_seen: today.clone(),
                    ..e.clone()
                },
                None => Entry {
                    fingerprint: fp,
                    state: Stored::Verified,
                    since: today.clone(),
                    first_seen: today.clone(),
                    last_seen: today.clone(),
                    name: file_name(name),
                },
            };
            self.peers.upsert(entry);
            self.touched.insert(fp);
            // After a reconnect in this session, they are verified too.
            let entry = self.peers.find(&fp).cloned();
            self.before.insert(fp, entry);
        }
        self.save()
    }

    /// The verified keys (for `--only-known`).
    pub fn verified(&self) -> HashSet<Fingerprint> {
        self.peers
            .entries()
            .filter(|e| e.state == Stored::Verified)
            .map(|e| e.fingerprint)
            .collect()
    }

    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// Writes what this session changed into the file as it is now on
    /// disk (another call may have added lines), through a temporary file
    /// and a rename, so a crash leaves the old file or the new one.
    fn save(&mut self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut on_disk = read(path)?;
        for fp in &self.touched {
            if let Some(e) = self.peers.find(fp) {
                on_disk.upsert(e.clone());
            }
        }
        let text = on_disk.render();
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
            std::fs::write(&tmp, &text)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        // Keep ours and theirs alike from now on.
        let touched = std::mem::take(&mut self.touched);
        self.peers = on_disk;
        self.touched = touched;
        Ok(())
    }
}

fn read(path: &std::path::Path) -> Result<KnownPeers, String> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KnownPeers::default()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(m) if m.len() > MAX_BYTES => {
            return Err(format!(
                "{} is larger than {MAX_BYTES} bytes; not read",
                path.display()
            ))
        }
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(KnownPeers::parse(&text))
}

/// A name as the file keeps it: one line, cleaned (it came from a peer).
fn file_name(name: &str) -> String {
    let clean = crate::sanitize::clean(name).replace(['\n', '\r'], " ");
    // At most a wire name's bytes: lossy decoding can triple a name, and
    // a line's length bounds the file's (`MAX_BYTES`).
    let trimmed =
        crate::room::wire::truncate_utf8(clean.trim(), crate::room::wire::MAX_NAME_BYTES).trim();
    if trimmed.is_empty() {
        "?".into()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sf-known-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn new_then_seen_then_verified_then_changed() {
        let d = dir("states");
        let path = d.join("known_peers");
        let (alice, alice2, bob) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let mut call = Trust::load(path.clone(), true).unwrap();
        assert_eq!(call.arrived(&alice, "alice").0.known, Known::New);
        // The same session: still new (a reconnect isn't another call).
        assert_eq!(call.arrived(&alice, "alice").0.known, Known::New);
        let mut call = Trust::load(path.clone(), true).unwrap();
        assert_eq!(call.arrived(&alice, "alice").0.known, Known::Seen);
        call.verify(&[(alice, "alice".into())]).unwrap();
        // A reconnect later in this session sees the verified key as such.
        assert_eq!(call.arrived(&alice, "alice").0.known, Known::Verified);
        assert!(call.verified().contains(&Fingerprint::of(&alice)));
        let mut call = Trust::load(path.clone(), true).unwrap();
        assert_eq!(call.arrived(&alice, "alice").0.known, Known::Verified);
        // Another key under her name: changed, naming the verified one.
        let (v, _) = call.arrived(&alice2, "alice");
        assert_eq!(v.known, Known::Changed);
        let prev = v.previous.unwrap();
        assert!(prev.verified);
        assert_eq!(prev.fingerprint, Fingerprint::of(&alice));
        assert_eq!(prev.since, dates::today());
        assert_eq!(call.arrived(&bob, "bob").0.known, Known::New);
        // Still changed in the next call: the warning persists.
        let mut call = Trust::load(path.clone(), true).unwrap();
        assert_eq!(call.arrived(&alice2, "alice").0.known, Known::Changed);
        // A person edits the file: deletes the old key's line.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# streamflow known peers"), "{text}");
        let old = Fingerprint::of(&alice).hex();
        let edited: String = text
            .lines()
            .filter(|l| !l.starts_with(&old))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&path, edited + "garbage line kept\n").unwrap();
        let mut call = Trust::load(path.clone(), true).unwrap();
        assert_eq!(call.arrived(&alice2, "alice").0.known, Known::Seen);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("garbage line kept"));
        assert_eq!(text.matches("# streamflow known peers").count(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn anonymous_writes_nothing_and_names_stay_one_line() {
        let d = dir("anon");
        let path = d.join("known_peers");
        let mut t = Trust::load(path.clone(), false).unwrap();
        t.arrived(&[1; 32], "x").1.unwrap();
        t.verify(&[([1; 32], "x".into())]).unwrap();
        assert!(!path.exists());
        let mut t = Trust::load(path.clone(), true).unwrap();
        t.arrived(&[4; 32], "eve\nf00d  verified").1.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        let peers = read(&path).unwrap();
        assert_eq!(peers.entries().count(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn writes_merge_with_what_another_call_wrote() {
        let d = dir("merge");
        let path = d.join("known_peers");
        let mut one = Trust::load(path.clone(), true).unwrap();
        let mut two = Trust::load(path.clone(), true).unwrap();
        one.arrived(&[1; 32], "a").1.unwrap();
        two.arrived(&[2; 32], "b").1.unwrap();
        let peers = read(&path).unwrap();
        assert_eq!(peers.entries().count(), 2);
        let _ = std::fs::remove_dir_all(&d);
    }
}
