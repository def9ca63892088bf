//! Compile output: source bundle, launch metadata, hook scripts, flake, review report, deterministic archives
