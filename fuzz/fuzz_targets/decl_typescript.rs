//! Any bytes as a TypeScript declaration: compile_declaration must never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        let _ = mvm_decl::compile_declaration(Path::new("app.ts"), source, Path::new("app.ts"));
    }
});
