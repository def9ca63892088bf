//! What the user sees while guest assets are prepared for the first time.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw progress on stderr (a CLI) or not at all (tests, daemons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Stderr,
    Hidden,
}

impl Progress {
    pub(crate) fn spinner(self, message: String) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(None, self.target());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("static template is valid"),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    pub(crate) fn bytes(self, total: u64, message: String) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(total), self.target());
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .expect("static template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(message);
        bar
    }

    fn target(self) -> ProgressDrawTarget {
        match self {
            Progress::Stderr => ProgressDrawTarget::stderr(),
            Progress::Hidden => ProgressDrawTarget::hidden(),
        }
    }
}
