//! The parser driver: tokens → kernels, with error recovery and diagnostics.
//!
//! A file is cut into one chunk per `kernel` keyword (with the `///` lines before it), and each
//! chunk is parsed on its own by the lalrpop grammar, so a broken kernel never hides the errors
//! of the next one. Within a kernel, statements recover through the grammar's `!` rules. Before parsing, a delimiter check reports unclosed and mismatched brackets (and
//! closes what is still open at the end of the chunk, so the kernel still parses). Afterwards a
//! cascade filter keeps at most one syntax error per statement: the first error explains the
//! mistake, the ones it causes in the same statement add nothing.

use crate::ast::*;
use crate::grammar::KernelParser;
use crate::lexer::{self, LexError, Spanned, Token};
use lalrpop_util::{ErrorRecovery, ParseError};
use std::collections::HashSet;
use tilc_base::{Diagnostic, SourceFile};

/// A span from lalrpop's byte locations.
pub(crate) fn sp(l: usize, r: usize) -> Span {
    Span::new(l, r)
}

/// Where the grammar's actions put the diagnostics of local checks.
#[derive(Default)]
pub(crate) struct Ctx {
    pub diags: Vec<Diagnostic>,
}

/// A parameter modifier as written (`out`, `global`, `shared`), checked by [`Ctx::param`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    Out,
    Global,
    Shared,
}

impl Ctx {
    /// Builds a compile-time parameter; under `: type`, names in the default and the
    /// candidates are types.
    pub fn ct_param(
        &mut self,
        name: Ident,
        ty: Option<CtParamTy>,
        candidates: Option<Candidates>,
        default: Option<CtValue>,
        span: Span,
    ) -> CtParam {
        let as_type = matches!(ty, Some(CtParamTy::Type(_)));
        let fix = |v: CtValue| match v {
            CtValue::Expr(Expr { kind: ExprKind::Name(n), span }) if as_type => {
                CtValue::Type(TypeRef { name: n, span })
            }
            other => other,
        };
        let candidates =
            candidates.map(|c| Candidates { values: c.values.into_iter().map(fix).collect(), span: c.span });
        CtParam { name, ty, candidates, default: default.map(fix), span }
    }

    /// Builds a runtime parameter from `name: modifiers elem [shape]`, reporting misplaced,
    /// repeated or missing modifiers.
    pub fn param(
        &mut self,
        name: Ident,
        mods: Vec<(Modifier, Span)>,
        elem: TypeRef,
        shape: Option<Shape>,
        span: Span,
    ) -> Param {
        let n = &name.name;
        let mut out: Option<Span> = None;
        let mut global: Option<Span> = None;
        for &(m, s) in &mods {
            match m {
                Modifier::Out => {
                    if out.is_some() {
                        self.diags.push(
                            Diagnostic::error(format!("`out` is written twice on parameter `{n}`"), s, "repeated `out`")
                                .with_hint("remove the second `out`"),
                        );
                    } else if global.is_some() {
                        self.diags.push(
                            Diagnostic::error(format!("`out` must come before `global` on parameter `{n}`"), s, "misplaced `out`")
                                .with_hint(format!("write `{n}: out global {}[...]`", elem.name)),
                        );
                    }
                    out = out.or(Some(s));
                }
                Modifier::Global => {
                    if global.is_some() {
                        self.diags.push(
                            Diagnostic::error(format!("`global` is written twice on parameter `{n}`"), s, "repeated `global`")
                                .with_hint("remove the second `global`"),
                        );
                    }
                    global = global.or(Some(s));
                }
                Modifier::Shared => {
                    self.diags.push(
                        Diagnostic::error(format!("parameter `{n}` cannot be in shared memory"), s, "`shared` is not allowed here")
                            .with_hint("tensor parameters are `global`; allocate shared memory in the body: `let s = shared f16[BK, BN];`"),
                    );
                    global = global.or(Some(s));
                }
            }
        }
        match (shape, global) {
            (Some(shape), Some(_)) => {
                let start = out.or(global).map_or(elem.span, |s| s.to(elem.span));
                let gspan = start.to(shape.span);
                Param { name, ty: ParamTy::Global(GlobalTy { out, elem, shape, span: gspan }), span }
            }
            (Some(shape), None) => {
                self.diags.push(
                    Diagnostic::error(format!("tensor parameter `{n}` must say its memory space"), elem.span.to(shape.span), "a tensor type without `global`")
                        .with_hint(format!("tensor parameters live in global memory: write `{n}: {}global {}[...]`", if out.is_some() { "out " } else { "" }, elem.name)),
                );
                let gspan = out.map_or(elem.span, |s| s.to(elem.span)).to(shape.span);
                Param { name, ty: ParamTy::Global(GlobalTy { out, elem, shape, span: gspan }), span }
            }
            (None, Some(g)) => {
                self.diags.push(
                    Diagnostic::error(format!("global tensor `{n}` has no shape"), elem.span, "expected a shape after the element type")
                        .with_hint(format!("write the shape in brackets, e.g. `{n}: global {}[m, n]`", elem.name)),
                );
                let empty = Shape { dims: Vec::new(), span: Span::point(elem.span.end as usize) };
                let gspan = out.unwrap_or(g).to(elem.span);
                Param { name, ty: ParamTy::Global(GlobalTy { out, elem, shape: empty, span: gspan }), span }
            }
            (None, None) => {
                if let Some(o) = out {
                    self.diags.push(
                        Diagnostic::error(format!("scalar parameter `{n}` cannot be `out`"), o, "only global tensors can be written")
                            .with_hint(format!("a kernel writes its results into `out global` tensors; remove `out`, or make `{n}` a tensor: `{n}: out global {}[1]`", elem.name)),
                    );
                }
                Param { name, ty: ParamTy::Scalar(elem), span }
            }
        }
    }

    /// Builds a `for` loop from `range(args)`, checking the name and the argument count.
    pub fn for_stmt(
        &mut self,
        var: Ident,
        range: Ident,
        args: Vec<Arg>,
        range_span: Span,
        unroll: Option<Unroll>,
        body: Block,
    ) -> ForStmt {
        if range.name != "range" {
            self.diags.push(
                Diagnostic::error("a `for` loop must iterate over `range(...)`", range.span, format!("`{}` is not `range`", range.name))
                    .with_hint("write `for i in range(end)`, `range(start, end)` or `range(start, end, step)`"),
            );
        }
        for a in &args {
            if let Some(n) = &a.name {
                self.diags.push(
                    Diagnostic::error("`range` takes no named arguments", n.span, "named argument")
                        .with_hint("write the bounds positionally: `range(start, end, step)`"),
                );
            }
        }
        let mut values: Vec<Expr> = args.into_iter().map(|a| a.value).collect();
        if values.is_empty() || values.len() > 3 {
            self.diags.push(
                Diagnostic::error(format!("`range` takes 1 to 3 arguments, got {}", values.len()), range_span, "wrong number of arguments")
                    .with_hint("write `range(end)`, `range(start, end)` or `range(start, end, step)`"),
            );
        }
        values.truncate(3);
        let error = Expr { kind: ExprKind::Error, span: range_span };
        let (start, end, step) = match values.len() {
            0 => (None, error, None),
            1 => (None, values.remove(0), None),
            2 => {
                let end = values.remove(1);
                (Some(values.remove(0)), end, None)
            }
            _ => {
                let step = values.remove(2);
                let end = values.remove(1);
                (Some(values.remove(0)), end, Some(step))
            }
        };
        ForStmt { var, start, end, step, range_span, unroll, body }
    }

    /// Builds a layout primitive, checking its name and arity; `None` for an unknown name.
    pub fn layout_prim(&mut self, name: Ident, args: Vec<Expr>, span: Span) -> Option<LayoutPrim> {
        let Some(prim) = LayoutPrimKind::from_name(&name.name) else {
            let names: Vec<&str> = LayoutPrimKind::ALL.iter().map(|p| p.as_str()).collect();
            let mut d = Diagnostic::error(format!("unknown layout primitive `{}`", name.name), name.span, "not a layout primitive");
            d = match closest(&name.name, &names) {
                Some(best) => d.with_hint(format!("did you mean `{best}`? The primitives are {}", names.join(", "))),
                None => d.with_hint(format!("the primitives are {}, combined with `.` or `*`", names.join(", "))),
            };
            self.diags.push(d);
            return None;
        };
        let (lo, hi) = prim.arity();
        if args.len() < lo || args.len() > hi {
            let want = if lo == hi { format!("{lo} argument{}", if lo == 1 { "" } else { "s" }) } else { format!("{lo} to {hi} arguments") };
            let hint = match prim {
                LayoutPrimKind::Replicated => "`replicated(w, n1, ..)` takes the number of threads that hold each element, then optional extents: `replicated(2)`, `replicated(2, 4, 4)`".to_string(),
                LayoutPrimKind::AutoLocalSpatial => "`auto_local_spatial(threads, n1, ..)` takes a thread count and the tile's extents, e.g. `auto_local_spatial(128, 64, 64)`".to_string(),
                p => format!("`{0}` takes one extent per tile dimension, e.g. `{0}(8, 4)`", p.as_str()),
            };
            self.diags.push(
                Diagnostic::error(format!("`{}` takes {want}, got {}", prim.as_str(), args.len()), span, "wrong number of arguments").with_hint(hint),
            );
        }
        Some(LayoutPrim { prim, name_span: name.span, args, span })
    }
}

/// The closest of `names` to `word` by edit distance, if it is close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (edit_distance(word, n), *n))
        .filter(|&(d, n)| d <= 2.max(n.len() / 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Why a diagnostic was made; decides whether the cascade filter may drop it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Lexer or delimiter check: always kept.
    Primary,
    /// The grammar: kept only when no earlier error is in the same statement.
    Syntax,
}

/// Parses `file` into an AST and the diagnostics found on the way. Never fails: what does not
/// parse is reported and left out (or kept as an `Error` node).
pub fn parse(file: &SourceFile) -> (File, Vec<Diagnostic>) {
    let text = file.text.as_str();
    let tokens = lexer::tokenize(text);
    let mut found: Vec<(Origin, Diagnostic)> = Vec::new();

    // Trivia and lexical errors.
    let mut comments = Vec::new();
    let mut code: Vec<Spanned> = Vec::with_capacity(tokens.len());
    for t in tokens {
        match &t.token {
            Token::Comment(c) => comments.push(Comment { text: c.clone(), trailing: code_before(text, t.start), span: sp(t.start, t.end) }),
            Token::Error(e) => {
                found.push((Origin::Primary, lex_diagnostic(e, sp(t.start, t.end), &text[t.start..t.end])));
                code.push(t);
            }
            _ => code.push(t),
        }
    }

    // Doc comments document the kernel right after them; others become plain comments.
    let mut parser_tokens: Vec<Spanned> = Vec::with_capacity(code.len());
    let mut i = 0;
    while i < code.len() {
        if !matches!(code[i].token, Token::DocComment(_)) {
            parser_tokens.push(code[i].clone());
            i += 1;
            continue;
        }
        // A run of `///` lines ends at anything else, including a blank line or a `//` comment.
        let mut run_end = i + 1;
        while run_end < code.len()
            && matches!(code[run_end].token, Token::DocComment(_))
            && adjacent_lines(text, code[run_end - 1].end, code[run_end].start)
        {
            run_end += 1;
        }
        if run_end < code.len() && code[run_end].token == Token::Kernel && adjacent_lines(text, code[run_end - 1].end, code[run_end].start) {
            parser_tokens.extend(code[i..run_end].iter().cloned());
        } else {
            let first = &code[i];
            found.push((
                Origin::Primary,
                Diagnostic::warning("doc comment documents nothing", sp(first.start, code[run_end - 1].end), "not followed by a kernel")
                    .with_hint("`///` documents the kernel that follows it; use `//` for an ordinary comment"),
            ));
            for t in &code[i..run_end] {
                comments.push(Comment { text: text[t.start..t.end].trim_end().to_string(), trailing: code_before(text, t.start), span: sp(t.start, t.end) });
            }
        }
        i = run_end;
    }
    comments.sort_by_key(|c| c.span.start);

    // One chunk per kernel.
    let mut starts: Vec<usize> = Vec::new();
    let mut k = 0;
    while k < parser_tokens.len() {
        match parser_tokens[k].token {
            Token::DocComment(_) => {
                starts.push(k);
                while k < parser_tokens.len() && matches!(parser_tokens[k].token, Token::DocComment(_)) {
                    k += 1;
                }
                k += 1; // the `kernel` after the docs
            }
            Token::Kernel => {
                starts.push(k);
                k += 1;
            }
            _ => k += 1,
        }
    }
    let first_start = starts.first().copied().unwrap_or(parser_tokens.len());
    if first_start > 0 {
        let t = &parser_tokens[0];
        if !matches!(t.token, Token::Error(_)) {
            found.push((
                Origin::Primary,
                Diagnostic::error(format!("expected `kernel`, found {}", t.token), sp(t.start, t.end), "a file holds only kernels")
                    .with_hint("a kernel starts with `kernel name(params) grid [blocks] warps n { ... }`; see lang/REFERENCE.md"),
            ));
        }
    }

    let mut kernels = Vec::new();
    for (n, &s) in starts.iter().enumerate() {
        let e = starts.get(n + 1).copied().unwrap_or(parser_tokens.len());
        let chunk = &parser_tokens[s..e];
        if let Some(kernel) = parse_chunk(chunk, text, &mut found) {
            kernels.push(kernel);
        }
    }

    let mut diags = cascade_filter(found, &parser_tokens);
    let file_ast = File { kernels, comments, blank_lines: blank_lines(text), span: sp(0, text.len()) };
    diags.extend(crate::validate::validate(&file_ast));
    diags.sort_by_key(|d| d.primary_span().map_or(u32::MAX, |s| s.start));
    (file_ast, diags)
}

/// Parses one kernel's tokens; reports what goes wrong into `found`.
fn parse_chunk(chunk: &[Spanned], text: &str, found: &mut Vec<(Origin, Diagnostic)>) -> Option<Kernel> {
    let chunk_end = chunk.last().map_or(text.len(), |t| t.end);
    let (closers, delim_diags) = check_delimiters(chunk, chunk_end, text);
    let had_delim_errors = !delim_diags.is_empty();
    found.extend(delim_diags.into_iter().map(|d| (Origin::Primary, d)));

    let stream: Vec<Result<(usize, Token, usize), LexError>> = chunk
        .iter()
        .map(|t| Ok((t.start, t.token.clone(), t.end)))
        .chain(closers.into_iter().map(|c| Ok((chunk_end, c, chunk_end))))
        .collect();
    let mut recovered: Vec<ErrorRecovery<usize, Token, LexError>> = Vec::new();
    let mut ctx = Ctx::default();
    let result = KernelParser::new().parse(&mut recovered, &mut ctx, stream);
    found.extend(ctx.diags.into_iter().map(|d| (Origin::Primary, d)));
    let mut report = |e: ParseError<usize, Token, LexError>| {
        if had_delim_errors && matches!(e, ParseError::UnrecognizedEof { .. }) {
            return; // the unclosed delimiter has said it
        }
        if let Some(d) = syntax_diagnostic(e, chunk) {
            found.push((Origin::Syntax, d));
        }
    };
    for r in recovered {
        report(r.error);
    }
    match result {
        Ok(k) => Some(k),
        Err(e) => {
            report(e);
            None
        }
    }
}

/// Reports unclosed and mismatched `()`, `[]`, `{}` in a chunk; returns the closers that would
/// close what is still open at its end (innermost first).
fn check_delimiters(chunk: &[Spanned], chunk_end: usize, text: &str) -> (Vec<Token>, Vec<Diagnostic>) {
    fn closer_of(t: &Token) -> Option<Token> {
        match t {
            Token::LParen => Some(Token::RParen),
            Token::LBracket => Some(Token::RBracket),
            Token::LBrace => Some(Token::RBrace),
            _ => None,
        }
    }
    let is_closer = |t: &Token| matches!(t, Token::RParen | Token::RBracket | Token::RBrace);
    // An unterminated string swallows the rest of its line, closers included: openers before it
    // on that line are its victims, not errors of their own.
    let swallowed: Vec<(usize, usize)> = chunk
        .iter()
        .filter(|t| t.token == Token::Error(LexError::UnterminatedString))
        .map(|t| (text[..t.start].rfind('\n').map_or(0, |i| i + 1), t.start))
        .collect();
    let is_victim = |open: &Spanned| swallowed.iter().any(|&(line, at)| line <= open.start && open.start < at);
    let mut stack: Vec<(&Spanned, Token)> = Vec::new();
    let mut diags = Vec::new();
    for t in chunk {
        if let Some(c) = closer_of(&t.token) {
            stack.push((t, c));
        } else if is_closer(&t.token) {
            let here = sp(t.start, t.end);
            match stack.iter().rposition(|(_, c)| *c == t.token) {
                Some(pos) if pos + 1 == stack.len() => {
                    stack.pop();
                }
                Some(pos) => {
                    for (open, c) in stack.drain(pos + 1..).rev().filter(|(o, _)| !is_victim(o)) {
                        diags.push(
                            Diagnostic::error(format!("unclosed {}", open.token), sp(open.start, open.end), format!("this {} is never closed", open.token))
                                .with_label(here, format!("{} closes an outer delimiter first", t.token))
                                .with_hint(format!("add {c} before {}", t.token)),
                        );
                    }
                    stack.pop();
                }
                None => match stack.pop() {
                    // `max(n, 4]`: the closer of the wrong kind; take it as closing the opener.
                    Some((open, c)) => diags.push(
                        Diagnostic::error(format!("mismatched closing delimiter {}", t.token), here, format!("expected {c}"))
                            .with_label(sp(open.start, open.end), format!("to close this {}", open.token))
                            .with_hint(format!("{} is closed by {c}", open.token)),
                    ),
                    None => diags.push(
                        Diagnostic::error(format!("unexpected closing {}", t.token), here, "nothing open to close")
                            .with_hint("remove it, or add the matching opening delimiter before it"),
                    ),
                },
            }
        }
    }
    let end = Span::point(chunk_end);
    let mut closers = Vec::new();
    for (open, c) in stack.into_iter().rev() {
        closers.push(c.clone());
        if is_victim(open) {
            continue;
        }
        diags.push(
            Diagnostic::error(format!("unclosed {}", open.token), sp(open.start, open.end), format!("this {} is never closed", open.token))
                .with_label(end, "the kernel ends here")
                .with_hint(format!("add the matching {c}")),
        );
    }
    (closers, diags)
}

/// Keeps every lexical and delimiter error, and a syntax error only when no error kept so far
/// is in the same statement (between the same two `;`, `{`, `}` tokens).
fn cascade_filter(mut found: Vec<(Origin, Diagnostic)>, tokens: &[Spanned]) -> Vec<Diagnostic> {
    let boundaries: Vec<usize> = tokens
        .iter()
        .filter(|t| matches!(t.token, Token::Semi | Token::LBrace | Token::RBrace | Token::Kernel))
        .map(|t| t.start)
        .collect();
    let segment = |d: &Diagnostic| {
        let at = d.primary_span().map_or(usize::MAX, |s| s.start as usize);
        boundaries.partition_point(|&b| b < at)
    };
    // Primary errors first so that they claim their statements before syntax errors do.
    found.sort_by_key(|(o, d)| (*o == Origin::Syntax, d.primary_span().map_or(u32::MAX, |s| s.start)));
    let mut taken: HashSet<usize> = HashSet::new();
    let mut out = Vec::new();
    for (origin, d) in found {
        let seg = segment(&d);
        if origin == Origin::Syntax && taken.contains(&seg) {
            continue;
        }
        if d.is_error() {
            taken.insert(seg);
        }
        out.push(d);
    }
    out
}

/// True when only whitespace with at most one line break lies between `end` and `start`.
fn adjacent_lines(text: &str, end: usize, start: usize) -> bool {
    let between = &text[end..start];
    between.trim().is_empty() && between.matches('\n').count() <= 1
}

/// True when non-blank text precedes byte `at` on its line.
fn code_before(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    !text[line_start..at].trim().is_empty()
}

/// The spans of whitespace-only lines.
fn blank_lines(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        if line.ends_with('\n') && line.trim().is_empty() {
            out.push(sp(start, end));
        }
        start = end;
    }
    out
}

fn lex_diagnostic(e: &LexError, span: Span, text: &str) -> Diagnostic {
    match e {
        LexError::InvalidChar => {
            let what = if text.chars().count() > 1 { "characters" } else { "character" };
            let hint = match text.chars().next() {
                Some('#') => "comments start with `//`",
                Some('\'') => "strings use double quotes: \"...\"",
                Some('$') | Some('`') | Some('?') | Some('\\') => "`.tl` source is made of names, numbers, operators, brackets and `//` comments",
                Some(c) if !c.is_ascii() => "names are ASCII: letters, digits and `_`",
                _ => "`.tl` source is made of names, numbers, operators, brackets and `//` comments",
            };
            Diagnostic::error(format!("unexpected {what} `{text}`"), span, "not part of any token").with_hint(hint)
        }
        LexError::BadNumber => Diagnostic::error(format!("invalid number `{text}`"), span, "not a number")
            .with_hint("numbers are decimal (`128`), hexadecimal (`0x80`), binary (`0b101`) or floats (`1.5`, `2e-3`); names cannot start with a digit"),
        LexError::IntTooLarge => Diagnostic::error(format!("integer `{text}` is too large"), span, "does not fit in 64 bits")
            .with_hint("integer literals are at most 18446744073709551615"),
        LexError::FloatOutOfRange => Diagnostic::error(format!("number `{text}` is out of range"), span, "not a finite f64")
            .with_hint("float literals must be finite 64-bit floats (below about 1.8e308)"),
        LexError::UnterminatedString => Diagnostic::error("unterminated string", span, "this string has no closing `\"`")
            .with_hint("close the string with `\"` on the same line"),
        LexError::BadEscape => Diagnostic::error("unknown escape in string", span, "bad escape")
            .with_hint("the escapes are `\\\\`, `\\\"`, `\\n` and `\\t`"),
    }
}

const EXPR_STARTS: [&str; 13] =
    ["int", "float", "true", "false", "name", "(", "[", "-", "!", "~", "load", "shared", "generic function"];
const OPERATORS: [&str; 20] = [
    "+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>", "==", "!=", "<", "<=", ">", ">=", "&&", "||", ".", "[",
];
const STMT_STARTS: [&str; 10] =
    ["let", "store", "copy_async", "wait", "sync", "for", "if", "while", "static_assert", "assume"];

/// Describes lalrpop's `expected` list in words: `` `;`, `)` or an operator ``.
fn describe_expected(expected: &[String]) -> (String, Vec<String>) {
    let raw: Vec<String> = expected.iter().map(|e| e.trim_matches('"').to_string()).collect();
    let has = |s: &str| raw.iter().any(|r| r == s);
    let mut items: Vec<String> = Vec::new();
    let mut skip: HashSet<&str> = HashSet::new();
    if has("let") {
        items.push("a statement".into());
        skip.extend(STMT_STARTS);
        skip.extend(EXPR_STARTS);
    } else if has("int") && has("(") {
        items.push("an expression".into());
        skip.extend(EXPR_STARTS);
    }
    if OPERATORS.iter().filter(|o| has(o)).count() >= 4 {
        items.push("an operator".into());
        skip.extend(OPERATORS);
    }
    for r in &raw {
        if skip.contains(r.as_str()) {
            continue;
        }
        items.push(match r.as_str() {
            "name" => "a name".into(),
            "int" => "an integer".into(),
            "float" => "a number".into(),
            "string" => "a string".into(),
            "type name" => "a type".into(),
            "generic function" => "a generic function".into(),
            "doc comment" => "a doc comment".into(),
            "invalid text" | "invalid number" => continue,
            other => format!("`{other}`"),
        });
    }
    // Put the punctuation first: "`;` or an operator" reads better than the reverse.
    items.sort_by_key(|i| !i.starts_with('`'));
    items.dedup();
    let text = match items.len() {
        0 => "the end of the kernel".to_string(),
        1 => items[0].clone(),
        n if n <= 7 => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
        _ => format!("{}, …", items[..6].join(", ")),
    };
    (text, raw)
}

/// A diagnostic for a lalrpop error; `None` for an error at a lexical-error token (already
/// reported by the lexer).
fn syntax_diagnostic(e: ParseError<usize, Token, LexError>, chunk: &[Spanned]) -> Option<Diagnostic> {
    match e {
        ParseError::UnrecognizedToken { token: (l, tok, r), expected } => {
            if matches!(tok, Token::Error(_) | Token::BadNumber) {
                return None;
            }
            let (list, raw) = describe_expected(&expected);
            let prev = chunk.iter().rev().find(|t| t.end <= l);
            let hint = syntax_hint(Some(&tok), &raw, prev, l, chunk);
            let msg = if expected.is_empty() {
                format!("unexpected {tok} after the end of the kernel")
            } else {
                format!("expected {list}, found {tok}")
            };
            Some(Diagnostic::error(msg, sp(l, r), format!("unexpected {tok}")).with_hint(hint))
        }
        ParseError::ExtraToken { token: (l, tok, r) } => Some(
            Diagnostic::error(format!("unexpected {tok} after the end of the kernel"), sp(l, r), "unexpected")
                .with_hint("only kernels may appear at the top level of a file"),
        ),
        ParseError::UnrecognizedEof { location, expected } => {
            let (list, raw) = describe_expected(&expected);
            let prev = chunk.last();
            let hint = syntax_hint(None, &raw, prev, location, chunk);
            Some(
                Diagnostic::error(format!("unexpected end of the kernel, expected {list}"), Span::point(location), "the kernel ends here")
                    .with_hint(hint),
            )
        }
        ParseError::InvalidToken { location } => Some(
            Diagnostic::error("invalid token", Span::point(location), "here").with_hint("remove this text"),
        ),
        ParseError::User { error } => Some(
            Diagnostic::error(format!("invalid text ({error:?})"), Span::point(0), "here").with_hint("remove this text"),
        ),
    }
}

/// The most useful hint for a syntax error, from what was found and what was expected.
fn syntax_hint(found: Option<&Token>, raw: &[String], prev: Option<&Spanned>, at: usize, _chunk: &[Spanned]) -> String {
    let has = |s: &str| raw.iter().any(|r| r == s);
    let is_keyword = |t: &Token| lexer::fixed_text(t).is_some_and(|s| s.chars().all(|c| c.is_ascii_alphabetic() || c == '_'));
    let cmp = |t: &Token| matches!(t, Token::Lt | Token::Gt | Token::Le | Token::Ge | Token::EqEq | Token::Ne);
    if let Some(tok) = found {
        if has("name") {
            if let Token::TypeName(n) = tok {
                return format!("`{n}` is spelled like an element type, and such words are reserved; choose another name");
            }
            if let Token::GenericFn(n) = tok {
                return format!("`{n}` is a built-in function and cannot be used as a name");
            }
            if is_keyword(tok) && !has(lexer::fixed_text(tok).unwrap_or("")) {
                return format!("{tok} is a keyword and cannot be used as a name");
            }
        }
        if cmp(tok) && !has("<") && has("&&") {
            return "comparisons do not chain: write `a < b && b < c`".into();
        }
        if *tok == Token::Assign && !has("=") {
            return "use `==` to compare; `=` only assigns, in `name = value;`".into();
        }
        if has("*") && has(".") && !has("+") && !has("int") {
            return "layouts combine with `.` or `*`: `spatial(8, 4).local(2, 2)`, `local(2, 1) * spatial(8, 4)`".into();
        }
        if has(":") && matches!(tok, Token::Comma | Token::RParen) {
            return "every parameter needs a type: `m: i32` or `x: global f16[m, n]`".into();
        }
        let binary = matches!(tok, Token::Star | Token::Slash | Token::Percent | Token::Plus | Token::Amp | Token::Pipe | Token::Caret | Token::AndAnd | Token::OrOr | Token::Shl | Token::Shr | Token::EqEq | Token::Ne | Token::Le | Token::Ge);
        if binary && has("int") {
            return format!("an operand is missing before {tok}");
        }
        if has(";") {
            if let Some(p) = prev {
                if p.end <= at && matches!(tok, Token::Let | Token::Store | Token::For | Token::If | Token::While | Token::RBrace | Token::Ident(_)) {
                    return format!("the statement before it is missing its `;`: add `;` after {}", p.token);
                }
            }
            if matches!(tok, Token::RBrace) {
                return "end the statement with `;`".into();
            }
        }
        if matches!(tok, Token::Comma | Token::RParen | Token::RBracket | Token::Semi) && has("int") {
            return "a value is missing here".into();
        }
    }
    if has("type name") {
        return "write a type: a scalar such as `i32`, a tensor such as `global f16[m, n]`, or a type parameter".into();
    }
    if has(":") && has(",") {
        return "every parameter needs a type: `m: i32` or `x: global f16[m, n]`".into();
    }
    if has("kernel") {
        return "a kernel starts with `kernel name(params) grid [blocks] warps n { ... }`".into();
    }
    if has("grid") {
        return "after the parameters comes `grid [blocks, ...]`, then `warps n`, then the body".into();
    }
    if has("warps") {
        return "write the number of warps per block after the grid: `warps 4`".into();
    }
    if has("{") && raw.len() <= 3 {
        return "a block starts with `{`".into();
    }
    if has(";") && found.is_none() {
        return "end the statement with `;`".into();
    }
    if has("=") && has("@") {
        return "a `let` needs a value: `let x = ...;`".into();
    }
    "see lang/REFERENCE.md for the grammar of kernels, statements and expressions".into()
}

/// Parses a layout expression on its own (`spatial(8, 4).local(2, 2)`), as `tilc layout EXPR`
/// takes it. Never fails: `None` with diagnostics when the text is not a layout.
pub fn parse_layout(file: &SourceFile) -> (Option<LayoutExpr>, Vec<Diagnostic>) {
    let mut found: Vec<(Origin, Diagnostic)> = Vec::new();
    let mut tokens: Vec<Spanned> = Vec::new();
    for t in lexer::tokenize(&file.text) {
        match &t.token {
            Token::Comment(_) | Token::DocComment(_) => {}
            Token::Error(e) => {
                found.push((Origin::Primary, lex_diagnostic(e, sp(t.start, t.end), &file.text[t.start..t.end])));
                tokens.push(t);
            }
            _ => tokens.push(t),
        }
    }
    let stream: Vec<Result<(usize, Token, usize), LexError>> =
        tokens.iter().map(|t| Ok((t.start, t.token.clone(), t.end))).collect();
    let mut recovered = Vec::new();
    let mut ctx = Ctx::default();
    let result = crate::grammar::LayoutParser::new().parse(&mut recovered, &mut ctx, stream);
    found.extend(ctx.diags.into_iter().map(|d| (Origin::Primary, d)));
    for r in recovered {
        if let Some(d) = syntax_diagnostic(r.error, &tokens) {
            found.push((Origin::Syntax, d));
        }
    }
    let layout = match result {
        Ok(l) => Some(l),
        Err(e) => {
            if let Some(d) = syntax_diagnostic(e, &tokens) {
                found.push((Origin::Syntax, d));
            }
            None
        }
    };
    let diags = cascade_filter(found, &tokens);
    let layout = if diags.iter().any(Diagnostic::is_error) { None } else { layout };
    (layout, diags)
}
