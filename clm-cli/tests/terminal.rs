//! `clm` under a real pseudo-terminal (tmux): the password typed at
//! `clm init`'s prompts without echo, colour on a terminal and never with
//! NO_COLOR, and a progress bar drawn while 5,000 certificates are imported.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(store: &Store) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            if std::env::var_os("CI").is_some() {
                panic!("tmux is needed for the terminal test and CI is set");
            }
            eprintln!("!!! SKIPPING the terminal test: no tmux");
            return None;
        }
        let session = format!("clm-test-{}", uuid::Uuid::new_v4().simple());
        let mut command = Command::new("tmux");
        command.args(["new-session", "-d", "-s", &session, "-x", "200", "-y", "50"]);
        for (name, value) in store.envs("config") {
            // The terminal decides the format here, not CLM_OUTPUT.
            if name != "CLM_OUTPUT" && name != "PATH" {
                command
                    .arg("-e")
                    .arg(format!("{name}={}", value.to_string_lossy()));
            }
        }
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_clm"))
            .parent()
            .unwrap()
            .display()
            .to_string();
        command
            .arg("-e")
            .arg("TERM=xterm-256color")
            .arg("-c")
            .arg(store.dir.path())
            .args(["bash", "--norc", "--noprofile"]);
        let status = command.status().expect("tmux starts");
        assert!(status.success());
        let tmux = Tmux { session };
        // tmux hands the shell its own PATH whatever -e says: set it here.
        tmux.send(&format!("export PATH={bin}:$PATH; clear"));
        Some(tmux)
    }

    fn send(&self, keys: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", keys])
            .status()
            .unwrap();
        assert!(status.success());
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The screen, with escape sequences when `escapes`.
    fn screen(&self, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-t", &self.session, "-S", "-200"];
        if escapes {
            args.push("-e");
        }
        let output = Command::new("tmux").args(&args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    /// Waits until the screen shows `text`; calls `seen` with every screen.
    fn wait_for(&self, text: &str, timeout: Duration, mut seen: impl FnMut(&str)) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen(false);
            seen(&screen);
            if screen.contains(text) {
                return screen;
            }
            assert!(
                start.elapsed() < timeout,
                "{text:?} did not appear within {timeout:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn passwords_at_the_prompt_colour_and_a_progress_bar() {
    let store = Store::sqlite();
    let Some(tmux) = Tmux::start(&store) else {
        return;
    };
    let wait = Duration::from_secs(60);
    // Markers are typed split (`A""-B`) so that only the output matches.
    tmux.send("clm init --admin-email admin@example.com; echo INIT\"\"-EXIT=$?");
    tmux.wait_for("New password:", wait, |_| {});
    tmux.send(PASSWORD);
    tmux.wait_for("Repeat the password:", wait, |_| {});
    tmux.send(PASSWORD);
    let screen = tmux.wait_for("INIT-EXIT=", wait, |_| {});
    assert!(screen.contains("INIT-EXIT=0"), "{screen}");
    assert!(
        !screen.contains(PASSWORD),
        "the password was echoed:\n{screen}"
    );
    assert!(
        screen.contains("administrator.username"),
        "a table on a terminal:\n{screen}"
    );

    tmux.send("clm login -u admin; echo LOGIN\"\"-EXIT=$?");
    tmux.wait_for("Password:", wait, |_| {});
    tmux.send(PASSWORD);
    let screen = tmux.wait_for("LOGIN-EXIT=", wait, |_| {});
    assert!(screen.contains("LOGIN-EXIT=0"), "{screen}");
    assert!(!screen.contains(PASSWORD), "{screen}");

    // Colour on a terminal (bold headers), none with NO_COLOR.
    tmux.send("clear; clm whoami; echo WHO\"\"-DONE");
    tmux.wait_for("WHO-DONE", wait, |_| {});
    assert!(
        tmux.screen(true).contains("\u{1b}[1mFIELD"),
        "{}",
        tmux.screen(true)
    );
    tmux.send("clear; NO_COLOR=1 clm whoami; echo NOCOLOR\"\"-DONE");
    tmux.wait_for("NOCOLOR-DONE", wait, |_| {});
    let screen = tmux.screen(true);
    assert!(
        screen.contains("FIELD") && !screen.contains("\u{1b}[1mFIELD"),
        "{screen}"
    );

    // 5,000 certificates (and their CA) in one bundle, imported in chunks.
    let certs = store.path("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("bundle.pem"), foreign_bundle(5000, "tty")).unwrap();
    tmux.send("clear; clm import certs --chunk 100; echo IMPORT\"\"-EXIT=$?");
    let mut bars = 0;
    let screen = tmux.wait_for("IMPORT-EXIT=", Duration::from_secs(600), |screen| {
        if screen.lines().any(|line| {
            line.contains("importing [") && line.contains("/5001") && line.contains("ETA")
        }) {
            bars += 1;
        }
    });
    assert!(screen.contains("IMPORT-EXIT=0"), "{screen}");
    assert!(screen.contains("5001 imported"), "{screen}");
    assert!(bars > 0, "no progress bar was drawn:\n{screen}");
}
