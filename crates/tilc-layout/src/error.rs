//! [`LayoutError`]: why a layout operation has no result. Values only, no spans: the caller
//! (the VM's layout pass, the CLI) attaches them to its own source positions.

use std::fmt;

/// Why a layout could not be built or an operation has no result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The fields given do not form a layout.
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// `divide(layout, atom)` / `left_divide(layout, atom)`: `layout` is not `q * atom`
    /// (resp. `atom * q`) for any `q`.
    NotDivisible {
        /// The dividend, printed.
        layout: String,
        /// The divisor, printed.
        atom: String,
        /// Which condition failed.
        reason: String,
    },
    /// A shape operation (permute, reshape, squeeze, reduce_to, ...) does not apply.
    BadShape {
        /// The operation.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Invalid { reason } => write!(f, "invalid layout: {reason}"),
            LayoutError::NotDivisible { layout, atom, reason } => {
                write!(f, "{layout} is not divisible by {atom}: {reason}")
            }
            LayoutError::BadShape { op, reason } => write!(f, "{op}: {reason}"),
        }
    }
}

impl std::error::Error for LayoutError {}
