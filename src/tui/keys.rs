//! Keys: what each does in the grid and in the chat box.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, ChatLine, Focus};
use super::line_edit::Edit;
use crate::room::MAX_CHAT_CHARS;
use crate::session::state::Camera;
use crate::session::SessionCommand;

/// A host's second `q` ends the call while the prompt the first one put
/// up is on screen: this long.
pub const CONFIRM_QUIT: Duration = Duration::from_secs(8);
/// Rows PgUp/PgDn scroll the chat history by.
const PAGE: usize = 5;

impl App {
    /// Translates a key into state changes and maybe a command for the session.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        // Typing in a shared terminal: every key is the program's (Ctrl-C
        // included), but Ctrl-] which leaves.
        let typing = self
            .terminal_focus
            .as_deref()
            .is_some_and(|f| self.may_type_in(f));
        if typing {
            self.dirty = true;
            return self.terminal_key(key);
        }
        // Nothing is bound to Alt: Alt+key is Esc then the key, typed
        // faster than the terminal could tell them apart.
        if key.modifiers.contains(KeyModifiers::ALT) {
            if let KeyCode::Char(_) = key.code {
                self.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
                let mut plain = key;
                plain.modifiers.remove(KeyModifiers::ALT);
                return self.on_key(plain);
            }
        }
        self.dirty = true;
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            match key.code {
                KeyCode::Char('c') => {
                    self.quit = true;
                    return None;
                }
                KeyCode::Char('z') => {
                    self.suspend = true;
                    return None;
                }
                _ => {}
            }
        }
        if self.show_help || self.show_share {
            self.overlay_key(key);
            return None;
        }
        if self.terminal_focus.is_some() {
            return self.terminal_key(key);
        }
        match key.code {
            KeyCode::PageUp => {
                self.chat_scroll = self.chat_scroll.saturating_add(PAGE);
                return None;
            }
            KeyCode::PageDown => {
                self.chat_scroll = self.chat_scroll.saturating_sub(PAGE);
                return None;
            }
            _ => {}
        }
        match self.focus {
            Focus::Chat => self.chat_key(key),
            Focus::Grid => self.grid_key(key),
        }
    }

    /// Arrows, PgUp/PgDn, Home/End scroll an overlay taller than the
    /// screen; any other key closes it.
    fn overlay_key(&mut self, key: KeyEvent) {
        // A page less a row: the last row stays in sight as context.
        let page = self.overlay_page.saturating_sub(1).max(1);
        let scroll = &mut self.overlay_scroll;
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => *scroll = scroll.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => *scroll = scroll.saturating_add(1),
            KeyCode::PageUp => *scroll = scroll.saturating_sub(page),
            KeyCode::PageDown | KeyCode::Char(' ') => *scroll = scroll.saturating_add(page),
            KeyCode::Home => *scroll = 0,
            // Clamped to the last page when drawn.
            KeyCode::End => *scroll = usize::MAX / 2,
            _ => {
                self.show_help = false;
                self.show_share = false;
                self.overlay_scroll = 0;
            }
        }
    }

    fn chat_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        match key.code {
            KeyCode::Esc | KeyCode::Tab => self.focus = Focus::Grid,
            KeyCode::Enter => {
                let text = self.editor.take(MAX_CHAT_CHARS);
                self.chat_full_told = false;
                let text = text.trim().to_string();
                if !text.is_empty() {
                    self.chat_scroll = 0;
                    self.push_chat(ChatLine {
                        who: "you".into(),
                        text: text.clone(),
                        system: false,
                    });
                    return Some(SessionCommand::Chat(text));
                }
            }
            KeyCode::Backspace => self.editor.backspace(),
            KeyCode::Delete => self.editor.delete(),
            KeyCode::Left => self.editor.left(),
            KeyCode::Right => self.editor.right(),
            KeyCode::Home => self.editor.home(),
            KeyCode::End => self.editor.end(),
            KeyCode::Char(c) => {
                let full = self.editor.insert(c, MAX_CHAT_CHARS) == Edit::Full;
                if full && !self.chat_full_told {
                    self.chat_full_told = true;
                    self.notice(format!(
                        "chat lines are at most {MAX_CHAT_CHARS} characters: the rest is kept; Enter sends this part and brings up the next"
                    ));
                }
            }
            _ => {}
        }
        None
    }

    fn grid_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        if key.code != KeyCode::Char('q') {
            self.quit_armed = None;
        }
        if key.code != KeyCode::Char('w') {
            self.verify_armed = None;
        }
        match key.code {
            KeyCode::Char('q') => {
                let now = Instant::now();
                let others = self.peers.len();
                // Armed exactly while the prompt is on screen.
                if self.hosting && others > 0 && self.quit_prompt(now).is_none() {
                    self.quit_armed = Some(now + CONFIRM_QUIT);
                } else {
                    self.quit = true;
                }
            }
            KeyCode::Char('m') => match &self.audio {
                Some(_) => {
                    self.muted = !self.muted;
                    self.notice(if self.muted {
                        "muted: the others hear silence (m unmutes)"
                    } else {
                        "unmuted"
                    });
                    return Some(SessionCommand::Mute(self.muted));
                }
                None => self.notice(NO_VOICE),
            },
            KeyCode::Char('v') if self.me.camera == Camera::Absent => {
                self.notice(
                    "no video source: you are view-only (join with --source to send video)",
                );
            }
            KeyCode::Char('v') => {
                self.camera_on = !self.camera_on;
                self.me.camera = if self.camera_on {
                    Camera::On
                } else {
                    Camera::Off
                };
                return Some(SessionCommand::Camera(self.camera_on));
            }
            KeyCode::Tab | KeyCode::Char('i') => self.focus = Focus::Chat,
            KeyCode::Char('c') => {
                self.colour = self.colour.next();
                self.flash(format!("colours: {} (c for the next)", self.colour.label()));
            }
            KeyCode::Char('p') => {
                self.cells = self.cells.next(self.pixel_mode());
                self.flash(format!("picture: {} (p for the next)", self.cells.label()));
            }
            KeyCode::Char('f') if !self.focus_next_share() => self.next_focus(),
            KeyCode::Char('f') => {}
            KeyCode::Char('w') => return self.verify_key(Instant::now()),
            KeyCode::Char('t') => return self.share_key(),
            KeyCode::Char('T') => return self.stop_share_key(),
            KeyCode::Char('g') => return self.grant_key(true),
            KeyCode::Char('G') => return self.grant_key(false),
            KeyCode::Char('s') if self.share.is_some() => {
                self.overlay_scroll = 0;
                self.show_share = true;
            }
            KeyCode::Char('s') => self.flash(NO_INVITE),
            KeyCode::Char('?') => {
                self.overlay_scroll = 0;
                self.show_help = true;
            }
            _ => {}
        }
        None
    }

    /// `f`: the others one at a time, then yourself, then the grid again
    /// (or round again when the grid can't show everyone).
    fn next_focus(&mut self) {
        let tiles = self.peers.len() + 1;
        self.focused_tile = match self.focused_tile {
            // One at a time already shows the first of the others.
            None if self.one_at_a_time => Some(2 % tiles),
            None => Some(if tiles > 1 { 1 } else { 0 }),
            Some(0) if !self.one_at_a_time => None,
            Some(i) if i + 1 < tiles => Some(i + 1),
            Some(_) => Some(0),
        };
        let text = match self.focused_tile {
            None => "f: everyone (the grid)".to_string(),
            Some(i) => {
                let name = if i == 0 {
                    "you".to_string()
                } else {
                    self.peers[i - 1].label()
                };
                format!("f: {name} ({}/{tiles}; f for the next)", i + 1)
            }
        };
        self.flash(text);
    }
}

/// What `m` says in a call without voice: short enough for the one-line
/// chat preview at 80 columns.
pub const NO_VOICE: &str = "no voice: start the call with --audio-source mic, tone or FILE.wav";
/// What `s` says where there is no invite to show.
pub const NO_INVITE: &str = "only the host has an invite to show (s in `streamflow host`)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::render::ColourMode;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn a_host_confirms_before_ending_the_call_for_others() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.hosting = true;
        app.feed_frame("p1", "Ada", vec![]);
        app.on_key(key(KeyCode::Char('q')));
        assert!(!app.quit);
        let (prompt, urgent) = app.banner(Instant::now()).expect("the prompt is shown");
        assert!(urgent);
        assert!(
            prompt.contains("End the call for 1 other person?"),
            "{prompt}"
        );
        assert!(app.chat.is_empty(), "the prompt is no chat line that stays");
        // Any other key disarms.
        app.on_key(key(KeyCode::Char('c')));
        assert!(app.quit_prompt(Instant::now()).is_none());
        app.on_key(key(KeyCode::Char('q')));
        assert!(!app.quit);
        // Late, but while the prompt is still shown: it ends the call.
        app.quit_armed = Some(Instant::now() + Duration::from_millis(200));
        app.on_key(key(KeyCode::Char('q')));
        assert!(app.quit);
        // Alone, or not hosting: at once.
        let mut alone = App::new("me", ColourMode::TrueColor, None);
        alone.hosting = true;
        alone.on_key(key(KeyCode::Char('q')));
        assert!(alone.quit);
    }

    #[test]
    fn an_expired_prompt_leaves_the_screen_and_q_asks_again() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.hosting = true;
        app.feed_frame("p1", "Ada", vec![]);
        app.feed_frame("p2", "Grace", vec![]);
        app.on_key(key(KeyCode::Char('q')));
        let later = Instant::now() + CONFIRM_QUIT + Duration::from_millis(1);
        app.dirty = false;
        app.expire(later);
        assert!(app.dirty, "a redraw takes the prompt away");
        assert!(app.banner(later).is_none());
        app.on_key(key(KeyCode::Char('q')));
        assert!(!app.quit, "a new first q");
        let (prompt, _) = app.banner(Instant::now()).unwrap();
        assert!(prompt.contains("2 other people"), "{prompt}");
    }

    #[test]
    fn c_and_f_flash_the_new_mode_and_f_reaches_your_own_tile() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.feed_frame("p1", "Ada", vec![]);
        app.on_key(key(KeyCode::Char('c')));
        let (text, _) = app.banner(Instant::now()).unwrap();
        assert!(text.contains("colours: 256"), "{text}");
        let mut seen = Vec::new();
        for _ in 0..3 {
            app.on_key(key(KeyCode::Char('f')));
            seen.push((app.focused_tile, app.banner(Instant::now()).unwrap().0));
        }
        assert_eq!(seen[0].0, Some(1));
        assert!(seen[0].1.contains("Ada (2/2"), "{seen:?}");
        assert_eq!(seen[1].0, Some(0), "your own tile");
        assert!(seen[1].1.contains("you (1/2"), "{seen:?}");
        assert_eq!(seen[2].0, None);
        assert!(seen[2].1.contains("everyone"), "{seen:?}");
        // The flash goes after a moment.
        let later = Instant::now() + Duration::from_secs(10);
        app.expire(later);
        assert!(app.banner(later).is_none());
    }

    #[test]
    fn s_without_an_invite_says_why_and_overlays_scroll() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_key(key(KeyCode::Char('s')));
        assert!(!app.show_share);
        assert_eq!(app.banner(Instant::now()).unwrap().0, NO_INVITE);
        app.on_key(key(KeyCode::Char('?')));
        app.overlay_page = 5;
        app.on_key(key(KeyCode::Down));
        app.on_key(key(KeyCode::PageDown));
        assert!(app.show_help, "scrolling keeps the overlay");
        assert_eq!(app.overlay_scroll, 5);
        app.on_key(key(KeyCode::PageUp));
        app.on_key(key(KeyCode::Up));
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.overlay_scroll, 0);
        app.on_key(key(KeyCode::Char('x')));
        assert!(!app.show_help);
        // Ctrl-Z asks the loop to suspend; it types nothing.
        app.on_key(key(KeyCode::Tab));
        app.on_key(KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL));
        assert!(app.suspend);
        assert_eq!(app.editor.text(), "");
    }

    #[test]
    fn chat_editing_and_the_length_cap() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_key(key(KeyCode::Tab));
        for c in "helo".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Left));
        app.on_key(key(KeyCode::Char('l')));
        assert_eq!(app.editor.text(), "hello");
        let sent = app.on_key(key(KeyCode::Enter));
        assert!(matches!(sent, Some(SessionCommand::Chat(t)) if t == "hello"));
        for _ in 0..MAX_CHAT_CHARS + 10 {
            app.on_key(key(KeyCode::Char('x')));
        }
        assert_eq!(app.editor.len(), MAX_CHAT_CHARS);
        // Nothing typed past the cap is lost: it is the next line.
        let sent = app.on_key(key(KeyCode::Enter));
        assert!(matches!(sent, Some(SessionCommand::Chat(t)) if t.len() == MAX_CHAT_CHARS));
        assert_eq!(app.editor.text(), "x".repeat(10));
        let told = app
            .chat
            .iter()
            .filter(|l| l.text.contains("at most"))
            .count();
        assert_eq!(told, 1, "said once");
    }
}
