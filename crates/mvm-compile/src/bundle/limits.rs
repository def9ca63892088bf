//! Caps on the source bundle. A source root or a recording can name far more
//! than any workload needs (a home directory's caches, a sparse 1 TiB file);
//! without caps a compile would fill the disk or run for hours before
//! anyone sees why. The values leave room for large real projects while a
//! runaway selection stops at once with `E_SOURCE_TOO_LARGE`.

/// Files and symlinks in `src/`: far above real projects (a large
/// `node_modules` is ~50,000), below what makes the walk and the image
/// build take minutes.
pub const MAX_FILES: u64 = 100_000;
/// One file: 1 GiB, the largest a microVM root filesystem reasonably holds.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// All files together: 2 GiB.
pub const MAX_TOTAL_BYTES: u64 = 2 << 30;

/// Lowers [`MAX_FILES`] for tests, which cannot create 100,000 files
/// quickly. It can only lower the cap: a larger or unparsable value is
/// ignored.
pub const MAX_FILES_ENV: &str = "MVM_TEST_BUNDLE_MAX_FILES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_files: u64,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl Limits {
    /// The caps in force: the constants, with [`MAX_FILES_ENV`] applied.
    pub fn current() -> Limits {
        let lowered = std::env::var(MAX_FILES_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&n| n < MAX_FILES);
        Limits {
            max_files: lowered.unwrap_or(MAX_FILES),
            max_file_bytes: MAX_FILE_BYTES,
            max_total_bytes: MAX_TOTAL_BYTES,
        }
    }
}

/// Running totals of what the bundle holds so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub files: u64,
    pub bytes: u64,
}

impl Tally {
    /// Counts one more entry of `size` bytes; says which cap it breaks, if any.
    pub fn add(&mut self, size: u64, limits: &Limits) -> Result<(), String> {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(size);
        if size > limits.max_file_bytes {
            Err(format!(
                "this file is {size} bytes, over the limit of {} bytes for one file",
                limits.max_file_bytes
            ))
        } else if self.files > limits.max_files {
            Err(format!(
                "the bundle reaches {} files here, over the limit of {} files",
                self.files, limits.max_files
            ))
        } else if self.bytes > limits.max_total_bytes {
            Err(format!(
                "the bundle reaches {} bytes here, over the limit of {} bytes in all",
                self.bytes, limits.max_total_bytes
            ))
        } else {
            Ok(())
        }
    }
}

/// The hint of every `E_SOURCE_TOO_LARGE`.
pub const HINT: &str = "narrow the source's include globs (or add exclude globs) to what the workload needs; \
     large data belongs in a volume, not the source bundle";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_is_named() {
        let l = Limits {
            max_files: 2,
            max_file_bytes: 10,
            max_total_bytes: 15,
        };
        let mut t = Tally::default();
        assert!(t.add(11, &l).unwrap_err().contains("for one file"));
        let mut t = Tally::default();
        t.add(8, &l).unwrap();
        assert!(t.add(8, &l).unwrap_err().contains("in all"));
        let mut t = Tally::default();
        t.add(0, &l).unwrap();
        t.add(0, &l).unwrap();
        assert!(t.add(0, &l).unwrap_err().contains("files"));
    }
}
