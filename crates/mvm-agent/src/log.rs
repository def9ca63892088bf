//! Concise log lines on stderr, which is `/dev/console` (the instance log)
//! in the VM.

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), "mvm-agent: {}", format_args!($($arg)*));
    }};
}

/// A stdout/stderr for children whose output belongs in the instance log
/// (runners, services): a copy of the agent's own stderr.
pub fn sink() -> std::process::Stdio {
    use std::os::fd::AsFd as _;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => std::process::Stdio::from(fd),
        Err(_) => std::process::Stdio::null(),
    }
}
