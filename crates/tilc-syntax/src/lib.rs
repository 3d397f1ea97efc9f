//! `tilc-syntax`: the `.tl` front end (work in progress).

pub mod ast;
pub mod lexer;
