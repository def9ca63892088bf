//! Guest agent: PID 1 inside the microVM
fn main() {}
