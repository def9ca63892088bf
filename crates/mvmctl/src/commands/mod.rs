//! One module per subcommand. Each exposes its clap arguments and a `run`
//! returning the process exit status: 0 success, 2 when the user's input
//! was rejected (findings printed), errors for anything unexpected.

pub mod audit;
pub mod build;
pub mod compile;
pub mod completions;
pub mod cp;
pub mod doctor;
pub mod down;
pub mod egress;
pub mod exec;
pub mod findings;
pub mod image;
pub mod invoke;
pub mod ir;
pub mod key;
pub mod logs;
pub mod pause;
pub mod plan;
pub mod port;
pub mod prune;
pub mod ps;
pub mod secret;
pub mod serve;
pub mod snapshot;
pub mod supervise;
pub mod up;

/// Exit status when input is rejected: validation errors, unusable paths.
pub const EXIT_REJECTED: i32 = 2;
