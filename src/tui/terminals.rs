//! Shared terminals as the TUI holds them: the latest screen of each
//! share in the call (ours included), who may type in it, and where the
//! view of a share bigger than its tile is panned to.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::session::sharing::ShareCommand;
use crate::session::{SessionCommand, SessionEvent};
use crate::share::screen::ShareScreen;

use super::app::App;

/// One share in the call.
pub struct SharedTerminal {
    /// The sharer's peer id (ours for our own share).
    pub from: String,
    pub screen: Option<Arc<ShareScreen>>,
    /// Who may type in it besides its sharer (a peer id).
    pub controller: Option<String>,
    /// Top-left cell of the view when panned by hand (focus mode, arrow
    /// keys); None follows the cursor.
    pub pan: Option<(u16, u16)>,
}

#[derive(Default)]
pub struct Terminals {
    pub list: Vec<SharedTerminal>,
}

impl Terminals {
    pub fn get(&self, from: &str) -> Option<&SharedTerminal> {
        self.list.iter().find(|t| t.from == from)
    }

    fn entry(&mut self, from: &str) -> &mut SharedTerminal {
        if let Some(i) = self.list.iter().position(|t| t.from == from) {
            return &mut self.list[i];
        }
        self.list.push(SharedTerminal {
            from: from.to_string(),
            screen: None,
            controller: None,
            pan: None,
        });
        self.list.last_mut().expect("just pushed")
    }
}

impl App {
    pub fn on_share(&mut self, ev: SessionEvent) {
        match ev {
            SessionEvent::ShareStarted { from, .. } => {
                self.terminals.entry(&from);
                let who = self.name_of(&from);
                self.notice(format!("{who} shares a terminal (f focuses it)"));
            }
            SessionEvent::ShareScreen { from, screen } => {
                self.terminals.entry(&from).screen = Some(screen);
            }
            SessionEvent::ShareStopped { from, reason } => {
                self.terminals.list.retain(|t| t.from != from);
                if self.terminal_focus.as_deref() == Some(from.as_str()) {
                    self.terminal_focus = None;
                }
                let who = self.name_of(&from);
                self.notice(format!("{who}'s shared terminal closed: {reason}"));
            }
            SessionEvent::ShareControl { from, to } => {
                match self.terminals.list.iter_mut().find(|t| t.from == from) {
                    Some(t) => t.controller = to.clone(),
                    // Our own share's first grant may come before its
                    // first screen.
                    None if self.my_id.as_deref() == Some(from.as_str()) => {
                        self.terminals.entry(&from).controller = to.clone()
                    }
                    None => return,
                }
                let sharer = self.name_of(&from);
                let msg = match to {
                    Some(p) => format!("{} may type in {sharer}'s terminal", self.name_of(&p)),
                    None => format!("only {sharer} types in {sharer}'s terminal now"),
                };
                self.notice(msg);
            }
            _ => {}
        }
    }
}

impl App {
    /// May we type in `from`'s share: our own, or one whose sharer let us.
    pub fn may_type_in(&self, from: &str) -> bool {
        let Some(me) = self.my_id.as_deref() else {
            return false;
        };
        from == me
            || self
                .terminals
                .get(from)
                .is_some_and(|t| t.controller.as_deref() == Some(me))
    }

    fn my_share(&self) -> Option<&SharedTerminal> {
        let me = self.my_id.as_deref()?;
        self.terminals.get(me)
    }

    /// `t`: share a terminal running `$SHELL` (or focus ours).
    pub fn share_key(&mut self) -> Option<SessionCommand> {
        if self.my_id.is_none() {
            self.flash("not in the call yet: t shares a terminal once you are");
            return None;
        }
        if let Some(mine) = self.my_share() {
            self.terminal_focus = Some(mine.from.clone());
            self.flash("your terminal: typing goes to it · Ctrl-] leaves · T stops sharing");
            return None;
        }
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into());
        let (cols, rows) = self.share_size.unwrap_or(self.term_size);
        self.flash(format!(
            "sharing a terminal ({shell}, {cols}×{rows}); t focuses it, T stops"
        ));
        Some(SessionCommand::Share(ShareCommand::Start {
            command: format!("exec {shell}"),
            cols,
            rows,
        }))
    }

    /// Our terminal was resized: so is our share, unless `--share-size`
    /// fixed it.
    pub fn resize_share(&self) -> Option<SessionCommand> {
        self.my_share()?;
        if self.share_size.is_some() {
            return None;
        }
        let (cols, rows) = self.term_size;
        Some(SessionCommand::Share(ShareCommand::Resize { cols, rows }))
    }

    /// `T`: stop sharing ours.
    pub fn stop_share_key(&mut self) -> Option<SessionCommand> {
        self.my_share()?;
        self.terminal_focus = None;
        Some(SessionCommand::Share(ShareCommand::Stop))
    }

    /// `g`: let the next verified member type in our share (one at a
    /// time); after the last, nobody. `G`: nobody, at once.
    pub fn grant_key(&mut self, next: bool) -> Option<SessionCommand> {
        let Some(mine) = self.my_share() else {
            self.flash("you are not sharing a terminal (t shares one)");
            return None;
        };
        if !next {
            return Some(SessionCommand::Share(ShareCommand::Revoke));
        }
        let verified: Vec<String> = self
            .peers
            .iter()
            .filter(|t| t.verified)
            .map(|t| t.id.clone())
            .collect();
        let after = match &mine.controller {
            Some(c) => verified.iter().position(|p| p == c).map(|i| i + 1),
            None => Some(0),
        };
        match after.and_then(|i| verified.get(i)) {
            Some(peer) => Some(SessionCommand::Share(ShareCommand::Grant(peer.clone()))),
            None => Some(SessionCommand::Share(ShareCommand::Revoke)),
        }
    }

    /// `f` with shares in the call: the shares first, one after another,
    /// then the faces as before. True if a share is focused now.
    pub fn focus_next_share(&mut self) -> bool {
        let next = match &self.terminal_focus {
            None if self.focused_tile.is_none() => self.terminals.list.first(),
            None => None,
            Some(f) => {
                let i = self.terminals.list.iter().position(|t| &t.from == f);
                i.and_then(|i| self.terminals.list.get(i + 1))
            }
        };
        self.terminal_focus = next.map(|t| t.from.clone());
        if let Some(from) = self.terminal_focus.clone() {
            let name = if self.my_id.as_deref() == Some(from.as_str()) {
                "your terminal".to_string()
            } else {
                format!("{}'s terminal", self.name_of(&from))
            };
            self.flash(format!("f: {name} (f for the next)"));
            return true;
        }
        false
    }

    /// A key while a share is focused: to the program if we may type in
    /// it, else arrows pan the view.
    pub fn terminal_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        let from = self.terminal_focus.clone()?;
        if !self.terminals.list.iter().any(|t| t.from == from) {
            self.terminal_focus = None;
            return None;
        }
        if self.may_type_in(&from) {
            if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(']') {
                self.terminal_focus = None;
                self.flash("back to the call (f focuses the terminal again)");
                return None;
            }
            let keys = key_bytes(key)?;
            let to = (self.my_id.as_deref() != Some(from.as_str())).then_some(from);
            return Some(SessionCommand::Share(ShareCommand::Keys { to, keys }));
        }
        let term = self
            .terminals
            .list
            .iter_mut()
            .find(|t| t.from == from)
            .expect("checked above");
        let (x, y) = term.pan.unwrap_or((0, 0));
        match key.code {
            KeyCode::Left => term.pan = Some((x.saturating_sub(4), y)),
            KeyCode::Right => term.pan = Some((x.saturating_add(4), y)),
            KeyCode::Up => term.pan = Some((x, y.saturating_sub(2))),
            KeyCode::Down => term.pan = Some((x, y.saturating_add(2))),
            // Back to following the cursor.
            KeyCode::Home => term.pan = None,
            KeyCode::Esc | KeyCode::Char('q') => self.terminal_focus = None,
            KeyCode::Char('f') if !self.focus_next_share() => self.flash("f: everyone (the grid)"),
            _ => {}
        }
        None
    }
}

/// What a terminal sends for a key (xterm's encoding), for the program in
/// a share.
pub fn key_bytes(key: KeyEvent) -> Option<Vec<u8>> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    let mut out = Vec::new();
    if alt {
        out.push(0x1b);
    }
    match key.code {
        KeyCode::Char(c) if ctrl => {
            let c = c.to_ascii_lowercase();
            match c {
                'a'..='z' => out.push(c as u8 - b'a' + 1),
                ' ' | '@' | '2' => out.push(0),
                '[' | '3' => out.push(0x1b),
                '\\' | '4' => out.push(0x1c),
                '^' | '6' => out.push(0x1e),
                '_' | '7' | '/' => out.push(0x1f),
                _ => return None,
            }
        }
        KeyCode::Char(c) => {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        KeyCode::Enter => out.push(b'\r'),
        KeyCode::Tab => out.push(b'\t'),
        KeyCode::BackTab => out.extend_from_slice(b"\x1b[Z"),
        KeyCode::Backspace => out.push(0x7f),
        KeyCode::Esc => out.push(0x1b),
        KeyCode::Up => out.extend_from_slice(b"\x1b[A"),
        KeyCode::Down => out.extend_from_slice(b"\x1b[B"),
        KeyCode::Right => out.extend_from_slice(b"\x1b[C"),
        KeyCode::Left => out.extend_from_slice(b"\x1b[D"),
        KeyCode::Home => out.extend_from_slice(b"\x1b[H"),
        KeyCode::End => out.extend_from_slice(b"\x1b[F"),
        KeyCode::PageUp => out.extend_from_slice(b"\x1b[5~"),
        KeyCode::PageDown => out.extend_from_slice(b"\x1b[6~"),
        KeyCode::Delete => out.extend_from_slice(b"\x1b[3~"),
        KeyCode::Insert => out.extend_from_slice(b"\x1b[2~"),
        KeyCode::F(n @ 1..=4) => out.extend_from_slice(&[0x1b, b'O', b'P' + n - 1]),
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            out.extend_from_slice(format!("\x1b[{code}~").as_bytes());
        }
        _ => return None,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::render::ColourMode;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn screen() -> Arc<ShareScreen> {
        Arc::new(ShareScreen::blank(80, 24))
    }

    #[test]
    fn keys_become_terminal_bytes() {
        assert_eq!(
            key_bytes(key(KeyCode::Char('é'))),
            Some("é".as_bytes().to_vec())
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(key_bytes(ctrl_c), Some(vec![3]));
        assert_eq!(key_bytes(key(KeyCode::Up)), Some(b"\x1b[A".to_vec()));
        assert_eq!(key_bytes(key(KeyCode::Enter)), Some(b"\r".to_vec()));
    }

    #[test]
    fn a_viewer_types_only_when_let_and_pans_otherwise() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.my_id = Some("me1".into());
        app.on_share(SessionEvent::ShareStarted {
            from: "p1".into(),
            cols: 120,
            rows: 40,
        });
        app.on_share(SessionEvent::ShareScreen {
            from: "p1".into(),
            screen: screen(),
        });
        assert!(app.focus_next_share());
        // Read-only: keys stay here; arrows pan.
        assert!(app.on_key(key(KeyCode::Char('x'))).is_none());
        app.on_key(key(KeyCode::Right));
        assert_eq!(app.terminals.get("p1").unwrap().pan, Some((4, 0)));
        // Let type: keys go to the sharer, Ctrl-] leaves.
        app.on_share(SessionEvent::ShareControl {
            from: "p1".into(),
            to: Some("me1".into()),
        });
        match app.on_key(key(KeyCode::Char('x'))) {
            Some(SessionCommand::Share(ShareCommand::Keys { to, keys })) => {
                assert_eq!((to.as_deref(), keys.as_slice()), (Some("p1"), &b"x"[..]));
            }
            other => panic!("{other:?}"),
        }
        let leave = KeyEvent::new(KeyCode::Char(']'), KeyModifiers::CONTROL);
        assert!(app.on_key(leave).is_none());
        assert!(app.terminal_focus.is_none());
        // Revoked: focused again, keys stay here.
        app.on_share(SessionEvent::ShareControl {
            from: "p1".into(),
            to: None,
        });
        app.focus_next_share();
        assert!(app.on_key(key(KeyCode::Char('x'))).is_none());
        // The share ends: its tile and focus go.
        app.on_share(SessionEvent::ShareStopped {
            from: "p1".into(),
            reason: "left the call".into(),
        });
        assert!(app.terminals.list.is_empty());
        assert!(app.on_key(key(KeyCode::Char('x'))).is_none());
        assert!(app.terminal_focus.is_none());
    }
}
