//! What the user sees during a build: one spinner per long step, on stderr.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw progress on stderr (a CLI) or not at all (tests, `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Stderr,
    Hidden,
}

impl Progress {
    /// Something the user should know before the build goes on.
    pub(crate) fn warn(self, message: &str) {
        match self {
            Progress::Stderr => eprintln!("warning: {message}"),
            Progress::Hidden => tracing::warn!("{message}"),
        }
    }

    pub(crate) fn step(self, message: impl Into<String>) -> ProgressBar {
        let target = match self {
            Progress::Stderr => ProgressDrawTarget::stderr(),
            Progress::Hidden => ProgressDrawTarget::hidden(),
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("static template is valid"),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}
