//! Progress of long operations: a bar with rate and ETA on a terminal
//! (stderr), plain lines at each tenth otherwise, so logs stay readable.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One operation's progress.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    position: u64,
    /// The last tenth printed as a plain line.
    last_tenth: u64,
}

impl Progress {
    /// Starts reporting `label` over `total` items.
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style =
                ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, ETA {eta})")
                    .map(|style| style.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(label.to_string());
            bar
        });
        Progress {
            bar,
            label: label.to_string(),
            total,
            position: 0,
            last_tenth: 0,
        }
    }

    /// An operation of unknown length: a spinner with the elapsed time on a
    /// terminal, a start line otherwise.
    pub fn spinner(label: &str) -> Self {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(label.to_string());
            bar.enable_steady_tick(std::time::Duration::from_millis(100));
            Some(bar)
        } else {
            eprintln!("{label}: started");
            None
        };
        Progress {
            bar,
            label: label.to_string(),
            total: 0,
            position: 0,
            // A spinner prints no tenths.
            last_tenth: 10,
        }
    }

    /// Ends a spinner: cleared on a terminal, a done line otherwise.
    pub fn done(&mut self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}: done", self.label),
        }
    }

    /// Changes the total (it became known later).
    pub fn set_total(&mut self, total: u64) {
        self.total = total;
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Sets how many items are done.
    pub fn set(&mut self, position: u64) {
        self.position = position;
        match &self.bar {
            Some(bar) => bar.set_position(self.position),
            None => {
                let tenth = (self.position.saturating_mul(10))
                    .checked_div(self.total)
                    .unwrap_or(10);
                if tenth > self.last_tenth {
                    self.last_tenth = tenth;
                    eprintln!("{}: {}/{}", self.label, self.position, self.total);
                }
            }
        }
    }

    /// Adds `count` done items.
    pub fn add(&mut self, count: u64) {
        self.set(self.position.saturating_add(count));
    }

    /// Ends the bar (left on screen).
    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
