//! Any bytes into the image builder's compile-output reader
//! (`mvm_image::compiled::Compiled::open`, the one place `mvmctl build`
//! parses a compile output). The first byte picks the shape:
//! - even: the rest is a tar stream, gzipped here into a `.tgz` input;
//! - odd: the rest is `launch.json` inside an otherwise well-formed output
//!   (its SHA256SUMS recomputed, as an attacker would).
//! Neither may panic, and nothing may be written outside the scratch
//! directory: the harness checks its sibling stays empty. Archives unpack
//! under `scratch/input-*/`, so `../../sentinel` names that sibling; the
//! seeds in `fuzz/seeds/compile_output` aim at it (`..` and a link).
#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mvm_image::compiled::Compiled;
use sha2::{Digest, Sha256};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn well_formed(dir: &Path, launch: &[u8]) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("launch.json".into(), launch.to_vec()),
        ("workload.json".into(), b"{}".to_vec()),
        ("src/app.py".into(), b"x = 1\n".to_vec()),
    ];
    for phase in ["before_build", "before_start", "after_start", "before_stop"] {
        files.push((format!("hooks/{phase}.sh"), b"#!/bin/sh\n".to_vec()));
    }
    let mut sums = String::new();
    files.sort();
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
        sums.push_str(&format!("{}  {name}\n", hex(&Sha256::digest(bytes))));
    }
    std::fs::write(dir.join("SHA256SUMS"), sums).unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let work = tempfile::tempdir().unwrap();
    let scratch = work.path().join("scratch");
    let sentinel = work.path().join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    let input = if mode % 2 == 0 {
        let path = work.path().join("in.tgz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all(rest).unwrap();
        gz.finish().unwrap();
        path
    } else {
        let dir = work.path().join("out");
        well_formed(&dir, rest);
        dir
    };
    let _ = Compiled::open(&input, &scratch);
    assert_eq!(
        std::fs::read_dir(&sentinel).unwrap().count(),
        0,
        "the reader wrote outside its scratch directory"
    );
});
