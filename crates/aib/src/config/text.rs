//! Byte offsets to line and column, the way editors count them.
//!
//! jsonc-parser gives byte ranges; people need `line:column`. Columns count characters (not
//! bytes), and `\n`, `\r\n` and a lone `\r` each end a line, as jsonc-parser counts them in its
//! own syntax errors, so every position aib prints agrees with the parser's.

use super::error::Position;

/// Line starts of one text, for turning byte offsets into positions.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineIndex<'t> {
    /// Indexes the line starts of `text` once.
    pub(crate) fn new(text: &'t str) -> Self {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { text, starts }
    }

    /// The position of byte `offset` (clamped to the text; never panics).
    pub(crate) fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            // An offset inside a multi-byte character: count up to the character's start.
            .unwrap_or_else(|| {
                self.text[start..]
                    .char_indices()
                    .take_while(|(i, _)| start + i < offset)
                    .count()
                    .saturating_sub(1)
            });
        Position {
            line,
            column: column + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines end at \n, \r\n and a lone \r; columns count characters, not bytes.
    #[test]
    fn positions_count_lines_and_characters_like_editors() {
        let text = "ab\r\ncd\ref\nüx";
        let index = LineIndex::new(text);
        assert_eq!(index.position(0), Position { line: 1, column: 1 });
        assert_eq!(index.position(4), Position { line: 2, column: 1 });
        assert_eq!(index.position(7), Position { line: 3, column: 1 });
        assert_eq!(index.position(10), Position { line: 4, column: 1 });
        // 'x' comes after the two-byte 'ü': byte 12, column 2.
        assert_eq!(index.position(12), Position { line: 4, column: 2 });
        assert_eq!(index.position(999), Position { line: 4, column: 3 });
    }
}
