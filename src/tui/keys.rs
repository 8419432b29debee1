//! Keys: what each does in the grid and in the chat box.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, ChatLine, Focus};
use super::line_edit::Edit;
use crate::room::MAX_CHAT_CHARS;
use crate::session::state::Camera;
use crate::session::SessionCommand;

/// A host's second `q` must come within this long of the first.
const CONFIRM_QUIT: Duration = Duration::from_secs(5);
/// Rows PgUp/PgDn scroll the chat history by.
const PAGE: usize = 5;

impl App {
    /// Translates a key into state changes and maybe a command for the session.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        if key.kind == KeyEventKind::Release {
            return None;
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
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return None;
        }
        if self.show_help || self.show_share {
            self.show_help = false;
            self.show_share = false;
            return None;
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

    fn chat_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        match key.code {
            KeyCode::Esc | KeyCode::Tab => self.focus = Focus::Grid,
            KeyCode::Enter => {
                let text = self.editor.take();
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
                        "chat lines are at most {MAX_CHAT_CHARS} characters: send this one (Enter) and go on in the next"
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
        match key.code {
            KeyCode::Char('q') => {
                let others = self.peers.len();
                let armed = self
                    .quit_armed
                    .is_some_and(|at| at.elapsed() < CONFIRM_QUIT);
                if self.hosting && others > 0 && !armed {
                    self.quit_armed = Some(Instant::now());
                    let people = if others == 1 { "person" } else { "people" };
                    self.notice(format!(
                        "ending the call for {others} {people}: press q again to end it, any other key to stay"
                    ));
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
                None => self.notice(
                    "no voice in this call (--audio-source sets a microphone, tone or file)",
                ),
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
            KeyCode::Char('c') => self.colour = self.colour.next(),
            KeyCode::Char('f') => {
                let tiles = self.peers.len() + 1;
                self.focused_tile = match self.focused_tile {
                    // One at a time already shows the first of the others.
                    None if self.one_at_a_time => Some(2 % tiles),
                    None => Some(if tiles > 1 { 1 } else { 0 }),
                    Some(i) if i + 1 < tiles => Some(i + 1),
                    // Round again when the grid can't show everyone.
                    Some(_) if self.one_at_a_time => Some(0),
                    Some(_) => None,
                };
            }
            KeyCode::Char('s') if self.share.is_some() => self.show_share = true,
            KeyCode::Char('?') => self.show_help = true,
            _ => {}
        }
        None
    }
}

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
        assert!(app
            .chat
            .back()
            .unwrap()
            .text
            .contains("ending the call for 1 person"));
        // Any other key disarms.
        app.on_key(key(KeyCode::Char('c')));
        app.on_key(key(KeyCode::Char('q')));
        assert!(!app.quit);
        app.on_key(key(KeyCode::Char('q')));
        assert!(app.quit);
        // Alone, or not hosting: at once.
        let mut alone = App::new("me", ColourMode::TrueColor, None);
        alone.hosting = true;
        alone.on_key(key(KeyCode::Char('q')));
        assert!(alone.quit);
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
        let told = app
            .chat
            .iter()
            .filter(|l| l.text.contains("at most"))
            .count();
        assert_eq!(told, 1, "said once");
    }
}
