//! `tilc-syntax`: the `.tl` language front end.
//!
//! - [`lexer`]: logos tokens (comments kept as trivia, lexical errors as tokens);
//! - `grammar.lalrpop`: the LR(1) grammar of a kernel (lalrpop), with error recovery;
//! - [`parse`]: the driver — never fails, returns the AST ([`ast`]) and every diagnostic;
//! - [`print`]: the canonical formatter (`tilc fmt`), whose output parses back to the same AST.
//!
//! The AST is what the author wrote, with a span on every node; meaning (names, types of
//! expressions, shapes, layouts as values) is given by `tilc-vm`. This crate checks only what it
//! can see in the text: element type names (via `tilc-dtype`), duplicate names, modifiers, layout
//! primitive names and arities. It knows no IR and no backend. The language is described in
//! `lang/REFERENCE.md`.

pub mod ast;
pub mod lexer;
mod parser;
mod printer;
pub mod validate;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, unused_parens, dead_code, missing_docs)]
    grammar
);

pub use parser::{parse, parse_layout};
pub use printer::{MAX_WIDTH, kernel_signature, print, print_expr, print_layout};

#[cfg(test)]
mod tests;
