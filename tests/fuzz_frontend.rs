//! Fuzzing the front end: random byte strings and random token sequences must come back as an
//! AST plus diagnostics, never as a panic. Each diagnostic must point inside the text and carry
//! a hint, and a file that parses without errors must print and parse back without errors.
//!
//! The seed is fixed (override with `TILC_FUZZ_SEED=<u64>`) and printed on failure; the case
//! counts add up to more than 100,000 inputs.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use tilc_base::{RenderStyle, SourceFile, render};

const BYTE_CASES: u32 = 55_000;
const TOKEN_CASES: u32 = 45_000;

fn seed() -> u64 {
    std::env::var("TILC_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7117_c0de)
}

fn runner(cases: u32, salt: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&(seed() ^ salt).to_le_bytes());
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Parses `text` and checks the front end's promises about the result.
fn front_end_holds(text: &str) -> Result<(), TestCaseError> {
    let file = SourceFile::new("fuzz.tl", text);
    let (ast, diags) = tilc_syntax::parse(&file);
    for d in &diags {
        if let Some(s) = d.primary_span() {
            prop_assert!(s.end as usize <= text.len(), "span {s:?} beyond the text: {}", d.message);
        }
        prop_assert!(d.hint.is_some(), "no hint on `{}`", d.message);
    }
    // Rendering is tilc-base's; check it on one input in eight to keep the run short.
    if text.len() % 8 == 0 {
        let rendered = render(&file, &diags, RenderStyle::Plain);
        prop_assert_eq!(rendered.is_empty(), diags.is_empty());
    }
    let has_errors = diags.iter().any(|d| d.is_error());
    // Text with something in it but no kernel is not a valid file: it must be reported.
    if ast.kernels.is_empty() && !text.trim().is_empty() && !has_errors {
        let only_comments = text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with("//"));
        prop_assert!(only_comments, "no kernel and no error for {text:?}");
    }
    if !has_errors {
        let printed = tilc_syntax::print(&ast);
        let (_, again) = tilc_syntax::parse(&SourceFile::new("printed.tl", printed.clone()));
        prop_assert!(!again.iter().any(|d| d.is_error()), "printed form of {text:?} does not parse:\n{printed}");
    }
    Ok(())
}

fn report<T: std::fmt::Debug>(what: &str, result: Result<(), TestError<T>>) {
    if let Err(e) = result {
        panic!("{what}: {e}\nseed: TILC_FUZZ_SEED={}", seed());
    }
}

#[test]
fn random_bytes_never_panic() {
    // Bytes biased toward the characters of the language, so the parser gets past the lexer.
    let alphabet: Vec<u8> = b"kernel let mut for in if else grid warps load store (){}[]<>=+-*/%:;,.@!&|^~\"_0123456789abcxyz u3 f16 \n\t/#$".to_vec();
    let byte = prop_oneof![
        3 => proptest::sample::select(alphabet),
        1 => any::<u8>(),
    ];
    let strategy = proptest::collection::vec(byte, 0..64);
    let result = runner(BYTE_CASES, 1).run(&strategy, |bytes| front_end_holds(&String::from_utf8_lossy(&bytes)));
    report("random bytes", result);
}

/// Pieces of real programs, so random sequences often look almost right.
const TOKENS: &[&str] = &[
    "kernel", "k", "(", ")", "<", ">", "[", "]", "{", "}", "n", ":", "i32", ",", "global", "out", "f16", "u3", "u0",
    "f9e9m9", "e8m0", "grid", "warps", "4", "let", "mut", "x", "=", ";", "load", "store", "for", "i", "in", "range",
    "if", "else", "while", "+", "-", "*", "/", "%", "==", "<=", "&&", "||", "!", "cast", "zeros", "view", "full", "iota",
    "@", "spatial", "local", "replicated", ".", "..", "1.5", "0x1F", "\"msg\"", "static_assert", "assume", "wait",
    "sync", "copy_async", "shared", "unroll", "true", "type", "///", "// c\n", "\n", "$", "12ab", "block", "axis",
];

#[test]
fn random_token_sequences_never_panic() {
    let header = "kernel k<BM = 64>(n: i32, x: out global f16[n]) grid [n] warps 4 {";
    let tokens = proptest::collection::vec(proptest::sample::select(TOKENS), 0..40);
    // Half the cases are wrapped in a valid kernel header, to reach the statement rules.
    let strategy = (tokens, any::<bool>());
    let result = runner(TOKEN_CASES, 2).run(&strategy, |(toks, wrap)| {
        let body = toks.join(" ");
        let text = if wrap { format!("{header}\n{body}\n}}\n") } else { body };
        front_end_holds(&text)
    });
    report("random tokens", result);
}

#[test]
fn the_checks_can_fail() {
    // The properties above are not vacuous: a broken program yields errors with hints.
    let file = SourceFile::new("t.tl", "kernel k(n: u0) grid [1] warps 1 { let = ; }");
    let (_, diags) = tilc_syntax::parse(&file);
    assert!(diags.len() >= 2, "{diags:?}");
    assert!(front_end_holds("kernel k() grid [1] warps 1 { }").is_ok());
}
