//! Byte offsets → 1-based line and column (columns count characters, not bytes).

use mvm_ir::Location;

pub struct LineIndex<'s> {
    file: String,
    source: &'s str,
    /// Byte offset where each line starts.
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    pub fn new(file: impl Into<String>, source: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            file: file.into(),
            source,
            starts,
        }
    }

    pub fn locate(&self, offset: usize) -> Location {
        let offset = offset.min(self.source.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        // A parser may point inside a multi-byte character; count up to the
        // last character boundary at or before it.
        let mut end = offset;
        while !self.source.is_char_boundary(end) {
            end -= 1;
        }
        let column = self.source[start..end].chars().count() + 1;
        Location {
            file: self.file.clone(),
            line: line as u32 + 1,
            column: column as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let idx = LineIndex::new("a.py", "x = 1\né = 'ü'\n");
        assert_eq!(
            idx.locate(0),
            Location {
                file: "a.py".into(),
                line: 1,
                column: 1
            }
        );
        let quote = "x = 1\né = ".len();
        assert_eq!(
            idx.locate(quote),
            Location {
                file: "a.py".into(),
                line: 2,
                column: 5
            }
        );
        assert_eq!(idx.locate(999).line, 3);
    }
}
