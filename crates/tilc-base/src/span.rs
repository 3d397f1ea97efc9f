//! Byte spans into a source file, and the file itself (name + text).
//!
//! A span is a half-open byte range `[start, end)` into one [`SourceFile`]. Spans are small
//! (`Copy`, two `u32`s) because every AST node and every VM instruction carries one.

use std::fmt;
use std::ops::Range;

/// A half-open byte range `[start, end)` into one source file.
///
/// Invariant: `start <= end`. A zero-length span points between two characters (used for
/// "expected X here" at the end of input).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// First byte of the range.
    pub start: u32,
    /// One past the last byte of the range.
    pub end: u32,
}

impl Span {
    /// The span `[start, end)`; the two ends are swapped if given in the wrong order.
    pub fn new(start: usize, end: usize) -> Span {
        let (s, e) = if start <= end { (start, end) } else { (end, start) };
        Span { start: s as u32, end: e as u32 }
    }

    /// An empty span at byte `at`.
    pub fn point(at: usize) -> Span {
        Span::new(at, at)
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// The span as a `Range<usize>` for slicing the source text.
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Number of bytes covered.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// True for a zero-length span.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Span {
        Span::new(r.start, r.end)
    }
}

/// One source file: the name shown in diagnostics (usually the path as the user typed it)
/// and its full text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The name printed in diagnostics, e.g. `examples/gemm_w3a8.tl`.
    pub name: String,
    /// The whole text of the file.
    pub text: String,
}

impl SourceFile {
    /// A source file named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        SourceFile { name: name.into(), text: text.into() }
    }

    /// 1-based (line, column) of byte offset `at`; the column counts characters, not bytes.
    pub fn line_col(&self, at: u32) -> (usize, usize) {
        let at = (at as usize).min(self.text.len());
        let before = &self.text[..floor_char_boundary(&self.text, at)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// The text covered by `span` (empty if the span is out of range).
    pub fn slice(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one_and_counts_chars() {
        let f = SourceFile::new("a.tl", "ab\nµc\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(1), (1, 2));
        assert_eq!(f.line_col(3), (2, 1));
        // 'µ' is two bytes: byte 5 is 'c', the second character of line 2.
        assert_eq!(f.line_col(5), (2, 2));
        assert_eq!(f.line_col(100), (3, 1));
    }

    #[test]
    fn span_join_and_order() {
        assert_eq!(Span::new(5, 2), Span::new(2, 5));
        assert_eq!(Span::new(1, 3).to(Span::new(7, 9)), Span::new(1, 9));
        assert!(Span::point(4).is_empty());
    }
}
