//! mvmctl command-line interface
fn main() {}
