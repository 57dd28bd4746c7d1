//! The dashboard end to end, as an operator drives it: a real
//! `stacktop-collector` (temporary data directory, 127.0.0.1:0), real
//! `stacktop-agent`s (lb1, web1, web2: a TCP check each against the
//! collector's own port, so every check passes), and the real `stacktop`
//! binary in a tmux session of its own. The test types keys (view switch,
//! filter, sort, Enter, charts alone, zoom, Esc, help, quit) and reads the screen with
//! `tmux capture-pane`: a stopped agent's row shows `—`, not its last CPU,
//! and the topology marks the web tier a SPOF once one of its two nodes is
//! stopped.
//!
//! The other tests end the dashboard with SIGTERM and with Ctrl-C and ask
//! tmux how the terminal was left (`remain-on-exit` keeps the dead pane):
//! not in the alternate screen, the mouse no longer reported, and the exit
//! status a shell expects (143, 130), as the `sh` the pane runs the
//! dashboard under writes it. (The cursor's visibility is not something
//! tmux 3.3 can report.)
//!
//! Every process is started here and killed by its own guard when the
//! test ends, pass or fail; tmux runs on a private socket in the test's
//! directory and only that server is killed. Without tmux the tests skip
//! with a printed reason, unless `STACKTOP_LAB=require`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    SCREEN_PATIENCE, Tmux, binaries, has_tmux, skip_without, start_agent, start_collector,
};
/// Where the pane's `sh` writes the dashboard's exit status, beside the
/// tmux socket.
const EXIT_STATUS: &str = "exit-status";

/// `alt=1`: the pane is in the alternate screen. (tmux 3.3 has no format
/// for the cursor's visibility: `cursor_flag` is the cursor-keys mode.)
fn flags(tmux: &Tmux) -> String {
    tmux.format("alt=#{alternate_on}")
}

/// The dashboard's process: the child of the pane's `sh` (see
/// [`dashboard`]).
fn pane_pid(tmux: &Tmux) -> u32 {
    let sh: u32 = tmux.format("#{pane_pid}").parse().expect("a pane pid");
    let children = format!("/proc/{sh}/task/{sh}/children");
    let text = std::fs::read_to_string(&children).unwrap_or_default();
    text.split_whitespace()
        .next()
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no dashboard under the pane's sh ({children}: {text:?})"))
}

/// Waits until the dashboard ended with `status`, as the pane's `sh` wrote
/// it into `dir` (tmux's own `pane_dead_status` is not reliable: tmux 3.3
/// may mark the pane dead on the pty's end and never record how the
/// process exited). `sh` reports a death by signal as 128 + its number.
fn wait_for_exit(tmux: &Tmux, dir: &Path, status: u8) {
    let file = dir.join(EXIT_STATUS);
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && text.ends_with('\n')
        {
            assert_eq!(
                text.trim(),
                status.to_string(),
                "the dashboard's exit status"
            );
            return;
        }
        assert!(
            start.elapsed() < SCREEN_PATIENCE,
            "the dashboard did not exit within {SCREEN_PATIENCE:?}:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `stacktop` command line against `url`, logging into `dir`.
fn dashboard(dir: &Path, url: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        format!(
            "env USER=tester TERM=xterm-256color \"$0\" \"$@\"; echo $? > '{}'",
            dir.join(EXIT_STATUS).display()
        ),
        env!("CARGO_BIN_EXE_stacktop").into(),
        "--collector".into(),
        url.into(),
        "--log-file".into(),
        dir.join("stacktop.log").to_string_lossy().into_owned(),
    ]
}

/// The first line of `screen` that has `node` as a word (its table row on
/// the nodes view).
fn row_of<'a>(screen: &'a str, node: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == node))
}

#[test]
fn the_operator_drives_every_view_and_sees_a_stopped_node_honestly() {
    if !has_tmux() && skip_without("tmux") {
        return;
    }
    let bin = binaries();
    let dir = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&bin, dir.path());
    let _lb1 = start_agent(&bin, dir.path(), &url, "lb1", "lb");
    let _web1 = start_agent(&bin, dir.path(), &url, "web1", "web");
    let mut web2 = Some(start_agent(&bin, dir.path(), &url, "web2", "web"));
    let command = dashboard(dir.path(), &url);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let tmux = Tmux::start(&dir.path().join("tmux.sock"), 100, 30, &command);
    tmux.keep_pane_on_exit();

    // The topology first: both web nodes healthy, no SPOF on the web tier.
    let screen = tmux.wait_for("the topology with two healthy web nodes", |s| {
        s.contains("Web 2/2 healthy") && s.contains("● web1") && s.contains("● web2")
    });
    assert!(screen.contains("users"), "{screen}");
    assert!(!screen.contains("SPOF: 1 of 2 Web"), "{screen}");

    // The nodes view, sorted by CPU, filtered to the web tier.
    tmux.press("2");
    tmux.wait_for("the nodes view", |s| s.contains("NAME▼"));
    // Name -> Roles -> CPU.
    tmux.press("s");
    tmux.press("s");
    tmux.wait_for("sorted by CPU", |s| s.contains("CPU▼"));
    tmux.press("S");
    tmux.wait_for("sorted by CPU, reversed", |s| s.contains("CPU▲"));
    tmux.press("/");
    for c in ["w", "e", "b"] {
        tmux.press(c);
    }
    tmux.press("Enter");
    let screen = tmux.wait_for("the filter", |s| s.contains("2 of 3 nodes"));
    assert!(row_of(&screen, "lb1").is_none(), "{screen}");
    let live = tmux.wait_for("web2's live CPU", |s| {
        row_of(s, "web2").is_some_and(|r| r.contains('%'))
    });
    let cpu_before = row_of(&live, "web2").unwrap().to_string();

    // Stop web2: its row goes to dashes, never its last CPU.
    drop(web2.take());
    let screen = tmux.wait_for("web2 down with dashes", |s| {
        row_of(s, "web2").is_some_and(|r| r.contains("down") && r.contains('—') && !r.contains('%'))
    });
    let row = row_of(&screen, "web2").unwrap();
    assert!(
        !row.contains("ok"),
        "a down node is not ok: {row} (was {cpu_before})"
    );

    // Detail of web2 (Enter), zoom, help, then back.
    tmux.press("Escape");
    tmux.wait_for("the filter cleared", |s| row_of(s, "lb1").is_some());
    tmux.press("g");
    tmux.press("/");
    for c in ["w", "e", "b", "2"] {
        tmux.press(c);
    }
    tmux.press("Enter");
    tmux.wait_for("only web2", |s| s.contains("1 of 3 nodes"));
    tmux.press("Enter");
    let screen = tmux.wait_for("web2's detail", |s| {
        s.contains("┌ Node") && s.contains("web2")
    });
    assert!(screen.contains("down"), "{screen}");
    // `c`: the charts alone. The agents tail no access log, so the
    // request charts say so in words; `c` again: the panels.
    tmux.press("c");
    tmux.wait_for("the request charts without a log", |s| {
        s.contains("panels hidden")
            && s.contains("Requests")
            && s.contains("no access log configured")
    });
    tmux.press("c");
    tmux.wait_for("the panels again", |s| s.contains("┌ Checks"));
    tmux.press("-");
    tmux.wait_for("charts over an hour", |s| s.contains("CPU % · 1h"));
    tmux.press("+");
    tmux.press("+");
    tmux.wait_for("charts over 5 minutes", |s| s.contains("CPU % · 5m"));
    tmux.press("f");
    tmux.wait_for("frozen", |s| s.contains("frozen"));
    tmux.press("?");
    tmux.wait_for("the help", |s| {
        s.contains("Tab / Shift-Tab") && s.contains("▼ down")
    });
    tmux.press("x");
    tmux.press("Escape");
    tmux.wait_for("back to the nodes", |s| {
        s.contains("NAME") && s.contains("1 of 3 nodes")
    });

    // The topology marks the web tier: one healthy node of two.
    tmux.press("1");
    let screen = tmux.wait_for("the web tier a SPOF", |s| {
        s.contains("SPOF: 1 of 2 Web nodes healthy")
    });
    assert!(screen.contains("▼ web2 down"), "{screen}");

    tmux.press("q");
    wait_for_exit(&tmux, dir.path(), 0);
}

#[test]
fn sigterm_restores_the_terminal() {
    ends_with_the_terminal_restored(
        |tmux| {
            let pid = pane_pid(tmux);
            let status = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        },
        143,
    );
}

#[test]
fn ctrl_c_restores_the_terminal_and_exits_130() {
    ends_with_the_terminal_restored(|tmux| tmux.press("C-c"), 130);
}

/// Starts the dashboard (against a collector with no agent), checks it
/// took over the terminal, ends it with `stop`, and checks how tmux says
/// the terminal was left and the exit status.
fn ends_with_the_terminal_restored(stop: impl FnOnce(&Tmux), status: u8) {
    if !has_tmux() && skip_without("tmux") {
        return;
    }
    let bin = binaries();
    let dir = tempfile::tempdir().unwrap();
    let (_collector, url) = start_collector(&bin, dir.path());
    let command = dashboard(dir.path(), &url);
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let tmux = Tmux::start(&dir.path().join("tmux.sock"), 80, 24, &command);
    tmux.keep_pane_on_exit();
    tmux.wait_for("the dashboard", |s| {
        s.contains("stacktop") && s.contains("connected")
    });
    assert_eq!(flags(&tmux), "alt=1", "the dashboard owns the screen");
    stop(&tmux);
    wait_for_exit(&tmux, dir.path(), status);
    assert_eq!(flags(&tmux), "alt=0", "the terminal as the shell left it");
    assert_eq!(
        tmux.format("#{mouse_any_flag}#{mouse_button_flag}#{mouse_standard_flag}"),
        "000"
    );
}
