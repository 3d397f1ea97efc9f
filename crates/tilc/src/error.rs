//! [`Error`]: everything that can go wrong between a `.tl` source and a finished launch, as one
//! typed value that prints well (`Display` renders the source excerpt where there is one) and
//! converts to [`Diagnostic`]s for tools that render their own.

use crate::Target;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use tilc_base::{Diagnostic, RenderStyle, SourceFile, Span, render};
use tilc_vm::RunError;

/// Why compiling, checking arguments, launching, tuning or caching failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The source does not compile: every error the front end found, over `file`.
    Compile {
        /// The source the diagnostics point into.
        file: Arc<SourceFile>,
        /// The diagnostics (at least one error).
        diagnostics: Vec<Diagnostic>,
    },
    /// A `define` that is not `NAME` and `VALUE`.
    BadDefine(String),
    /// The target cannot run this kernel (a GPU target before the GPU path exists, or a kernel
    /// that uses something the backend does not implement).
    Unsupported {
        /// The target asked for.
        target: Target,
        /// What is missing.
        reason: String,
    },
    /// The backend failed on a kernel it should accept: a bug in tilc.
    Codegen {
        /// The target.
        target: Target,
        /// The backend's message.
        message: String,
    },
    /// The launch arguments do not match the kernel's signature (count, kind, element type,
    /// shape, an output passed read-only, a scalar out of range). Nothing ran.
    Argument {
        /// The kernel.
        kernel: String,
        /// What is wrong, naming the parameter.
        message: String,
        /// The parameter's declaration, when it is known.
        at: Option<(Arc<SourceFile>, Span)>,
    },
    /// A run-time check of the kernel failed (division by zero, a false `assume`, …): the
    /// outputs may be partly written.
    Run {
        /// The source the error's span points into.
        file: Arc<SourceFile>,
        /// The failed check, its instruction and block.
        error: RunError,
    },
    /// A host tensor cannot be built or converted as asked.
    Tensor(String),
    /// The on-disk cache could not be used.
    Cache(String),
    /// Autotuning found nothing to run.
    Tune(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The source file the error's spans point into, when it has any.
    pub fn source_file(&self) -> Option<&SourceFile> {
        match self {
            Error::Compile { file, .. } | Error::Run { file, .. } => Some(file),
            Error::Argument { at: Some((file, _)), .. } => Some(file),
            _ => None,
        }
    }

    /// The error as diagnostics over [`Error::source_file`] (with spans where the error has a
    /// place in the source; one span-less diagnostic otherwise).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Error::Compile { diagnostics, .. } => diagnostics.clone(),
            Error::Run { error, .. } => vec![error.to_diagnostic()],
            Error::Argument { message, at: Some((_, span)), .. } => vec![Diagnostic::error(message.clone(), *span, "parameter declared here")],
            other => vec![Diagnostic::error_nowhere(other.to_string())],
        }
    }

    /// The diagnostics rendered with source excerpts, as the `tilc` tool prints them.
    pub fn render(&self, style: RenderStyle) -> String {
        let empty = SourceFile::new("", "");
        render(self.source_file().unwrap_or(&empty), &self.diagnostics(), style)
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "`{}`: {source}", path.display()),
            Error::Compile { file, diagnostics } => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                writeln!(f, "`{}` does not compile ({errors} error{}):", file.name, if errors == 1 { "" } else { "s" })?;
                f.write_str(render(file, diagnostics, RenderStyle::Plain).trim_end())
            }
            Error::BadDefine(m) => write!(f, "bad define: {m}"),
            Error::Unsupported { target, reason } => write!(f, "target `{target}`: {reason}"),
            Error::Codegen { target, message } => write!(f, "internal error compiling for `{target}`: {message}"),
            Error::Argument { kernel, message, .. } => write!(f, "bad arguments to `{kernel}`: {message}"),
            Error::Run { file, error } => f.write_str(render(file, &[error.to_diagnostic()], RenderStyle::Plain).trim_end()),
            Error::Tensor(m) => write!(f, "tensor: {m}"),
            Error::Cache(m) => write!(f, "kernel cache: {m}"),
            Error::Tune(m) => write!(f, "autotuning: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Run { error, .. } => Some(error),
            _ => None,
        }
    }
}
