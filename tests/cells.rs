//! Finer cells in a real terminal: the demo in tmux at 80×24 with
//! `--cells sextant` draws sextant symbols, `p` cycles to half blocks and
//! quadrants, and `auto` inside tmux (which hides the outer terminal)
//! stays with half blocks.

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::BIN;

const UP: Duration = Duration::from_secs(60);
const SHOWN: Duration = Duration::from_secs(10);

fn has_sextant(s: &str) -> bool {
    s.chars().any(|c| ('\u{1FB00}'..='\u{1FB3B}').contains(&c))
}

fn has_quadrant(s: &str) -> bool {
    s.chars().any(|c| ('\u{2596}'..='\u{259F}').contains(&c))
}

fn demo(tag: &str, cells: &str) -> Tmux {
    Tmux::start(
        tag,
        80,
        24,
        &format!("{BIN} demo --audio-source none --audio-sink none {cells}; sleep 30"),
    )
}

#[test]
fn sextants_show_and_p_cycles_the_cells() {
    let tmux = demo("cells", "--cells sextant");
    tmux.wait_for(UP, has_sextant)
        .unwrap_or_else(|s| panic!("no sextant symbols at 80x24:\n{s}"));
    // p: half blocks (▀ only, no sextants left once a frame is drawn).
    tmux.keys(&["p"]);
    tmux.wait_for(SHOWN, |s| {
        s.contains("picture: half blocks") && !has_sextant(s)
    })
    .unwrap_or_else(|s| panic!("p did not switch to half blocks:\n{s}"));
    tmux.keys(&["p"]);
    tmux.wait_for(SHOWN, |s| {
        s.contains("picture: quadrants") && has_quadrant(s)
    })
    .unwrap_or_else(|s| panic!("p did not switch to quadrants:\n{s}"));
    tmux.keys(&["q"]);
}

#[test]
fn auto_inside_tmux_keeps_half_blocks() {
    let tmux = demo("cells-auto", "--cells auto");
    let screen = tmux
        .wait_for(UP, |s| s.contains('▀') && s.contains("Ada"))
        .unwrap_or_else(|s| panic!("the demo did not come up:\n{s}"));
    assert!(!has_sextant(&screen) && !has_quadrant(&screen), "{screen}");
    tmux.keys(&["q"]);
}

/// `--cells kitty` where the terminal doesn't take images (tmux swallows
/// the query): the query leaves no trace on the screen, the user is told,
/// and the picture is drawn in cells.
#[test]
fn kitty_where_the_terminal_has_no_pixels_falls_back_to_cells_and_says_so() {
    let tmux = demo("cells-kitty", "--cells kitty");
    let screen = tmux
        .wait_for(UP, |s| s.contains('▀') && s.contains("Ada"))
        .unwrap_or_else(|s| panic!("the demo did not come up:\n{s}"));
    assert!(
        !screen.contains("Gi=31") && !screen.contains("AAAA"),
        "{screen}"
    );
    // Said in the chat (Tab opens it).
    tmux.keys(&["Tab"]);
    tmux.wait_for(SHOWN, |s| s.contains("): drawing half blocks"))
        .unwrap_or_else(|s| panic!("no word about the missing pixels:\n{s}"));
    tmux.keys(&["Escape", "q"]);
}
