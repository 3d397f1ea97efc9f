//! User-facing diagnostics as data, and their one renderer.
//!
//! Every stage of tilc that can reject user input (lexer, parser, elaboration, layout
//! inference, target checks, argument checks) produces [`Diagnostic`] values; nothing else
//! prints errors. [`render`] turns them into text with codespan-reporting: the file name,
//! `line:column`, the source line, carets under the span and the hint. [`RenderStyle::Plain`]
//! gives a colourless rendering that tests snapshot.

use crate::span::{SourceFile, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use std::io::Write;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The program is rejected.
    Error,
    /// The program is accepted, but probably not what was meant.
    Warning,
}

/// A span with a message; the primary label is where the error is, secondary labels give
/// context (e.g. "first defined here").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is wrong there (may be empty).
    pub message: String,
    /// Exactly one label of a diagnostic with labels should be primary.
    pub primary: bool,
}

/// One error or warning about a source file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable code, e.g. `E0102`; empty when the stage has none.
    pub code: String,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Spans with labels; the first primary label decides the `file:line:col` shown.
    pub labels: Vec<Label>,
    /// What to do about it, printed as `= hint: ...`.
    pub hint: Option<String>,
    /// Further facts, printed as `= note: ...`.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// An error with `message` and a primary label at `span` saying `label`.
    pub fn error(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code: String::new(),
            message: message.into(),
            labels: vec![Label { span, message: label.into(), primary: true }],
            hint: None,
            notes: Vec::new(),
        }
    }

    /// An error that points at no source (e.g. a file that cannot be read).
    pub fn error_nowhere(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code: String::new(),
            message: message.into(),
            labels: Vec::new(),
            hint: None,
            notes: Vec::new(),
        }
    }

    /// A warning with `message` and a primary label at `span`.
    pub fn warning(message: impl Into<String>, span: Span, label: impl Into<String>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(message, span, label) }
    }

    /// Sets the stable error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Diagnostic {
        self.code = code.into();
        self
    }

    /// Sets the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into(), primary: false });
        self
    }

    /// The span of the first primary label, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }

    /// True for errors (not warnings).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Whether the renderer may use ANSI colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderStyle {
    /// No colours: stable text for snapshots, logs and pipes.
    Plain,
    /// ANSI colours for a terminal.
    Color,
}

/// Renders `diags` about `file` as text, in order, each ending with a blank line.
pub fn render(file: &SourceFile, diags: &[Diagnostic], style: RenderStyle) -> String {
    let files = SimpleFile::new(file.name.as_str(), file.text.as_str());
    let config = term::Config::default();
    let mut out = match style {
        RenderStyle::Plain => termcolor::Buffer::no_color(),
        RenderStyle::Color => termcolor::Buffer::ansi(),
    };
    for d in diags {
        // Spans are clamped to the text in `to_codespan`, so emitting cannot fail on them;
        // should it fail anyway, the message still reaches the user.
        if term::emit(&mut out, &config, &files, &to_codespan(d, file.text.len())).is_err() {
            let _ = writeln!(out, "error: {}", d.message);
        }
    }
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

/// Renders one diagnostic; see [`render`].
pub fn render_one(file: &SourceFile, diag: &Diagnostic, style: RenderStyle) -> String {
    render(file, std::slice::from_ref(diag), style)
}

fn to_codespan(d: &Diagnostic, len: usize) -> cs::Diagnostic<()> {
    let clamp = |s: Span| {
        let start = (s.start as usize).min(len);
        let end = (s.end as usize).min(len).max(start);
        start..end
    };
    let mut out = match d.severity {
        Severity::Error => cs::Diagnostic::error(),
        Severity::Warning => cs::Diagnostic::warning(),
    }
    .with_message(d.message.clone());
    if !d.code.is_empty() {
        out = out.with_code(d.code.clone());
    }
    out = out.with_labels(
        d.labels
            .iter()
            .map(|l| {
                let style = if l.primary { cs::LabelStyle::Primary } else { cs::LabelStyle::Secondary };
                cs::Label::new(style, (), clamp(l.span)).with_message(l.message.clone())
            })
            .collect(),
    );
    let mut notes: Vec<String> = d.hint.iter().map(|h| format!("hint: {h}")).collect();
    notes.extend(d.notes.iter().map(|n| format!("note: {n}")));
    out.with_notes(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_rendering_has_file_line_col_caret_and_hint() {
        let file = SourceFile::new("k.tl", "kernel f() {\n    let x = u0;\n}\n");
        let d = Diagnostic::error("unknown element type `u0`", Span::new(25, 27), "not a type")
            .with_hint("integer widths are 1..=32");
        let text = render_one(&file, &d, RenderStyle::Plain);
        assert!(text.contains("k.tl:2:13"), "{text}");
        assert!(text.contains("^^"), "{text}");
        assert!(text.contains("= hint: integer widths are 1..=32"), "{text}");
        assert!(!text.contains('\u{1b}'), "plain rendering must have no escapes: {text}");
    }

    #[test]
    fn out_of_range_spans_are_clamped_not_fatal() {
        let file = SourceFile::new("k.tl", "abc");
        let d = Diagnostic::error("boom", Span::new(10, 20), "here");
        let text = render_one(&file, &d, RenderStyle::Plain);
        assert!(text.contains("boom"));
    }
}
