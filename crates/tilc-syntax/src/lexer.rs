//! The `.tl` lexer (logos): source text → tokens with byte spans.
//!
//! Whitespace is skipped; comments are tokens here (the parser driver moves them aside as
//! trivia for the formatter). Lexical errors are not fatal: each one becomes a
//! [`Token::Error`] with its [`LexError`], so the parser can go on and report more.
//!
//! Words spelled like built-in types (`u3`, `i8`, `bf16`, `f6e3m2`, `e8m0`, `ue4m3`, `bool`) are
//! [`Token::TypeName`]s, not identifiers, so `cast<f32>(x)` and `x < f32` need no lookahead; a
//! type name is validated (`u0` is rejected) after parsing, by `tilc_dtype`.

use logos::Logos;
use std::fmt;

/// What is wrong with a piece of text that is not a token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LexError {
    /// A character that starts no token.
    #[default]
    InvalidChar,
    /// Digits followed by letters that make no number (`12ab`, `0x`).
    BadNumber,
    /// An integer literal above 2^64 - 1.
    IntTooLarge,
    /// A float literal that overflows f64.
    FloatOutOfRange,
    /// A string literal without its closing quote on the same line.
    UnterminatedString,
    /// A string literal with an escape other than `\\`, `\"`, `\n`, `\t`.
    BadEscape,
}

/// An integer literal: its value and spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntTok {
    /// The value.
    pub value: u64,
    /// The text as written.
    pub text: String,
}

/// A float literal: its value and spelling.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatTok {
    /// The value.
    pub value: f64,
    /// The text as written.
    pub text: String,
}

/// The tokens of `.tl`.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(skip r"[ \t\r\n\f]+")]
#[logos(error = LexError)]
pub enum Token {
    // Keywords.
    /// `kernel`
    #[token("kernel")]
    Kernel,
    /// `let`
    #[token("let")]
    Let,
    /// `mut`
    #[token("mut")]
    Mut,
    /// `for`
    #[token("for")]
    For,
    /// `in`
    #[token("in")]
    In,
    /// `if`
    #[token("if")]
    If,
    /// `else`
    #[token("else")]
    Else,
    /// `while`
    #[token("while")]
    While,
    /// `out`
    #[token("out")]
    Out,
    /// `global`
    #[token("global")]
    Global,
    /// `shared`
    #[token("shared")]
    Shared,
    /// `load`
    #[token("load")]
    Load,
    /// `store`
    #[token("store")]
    Store,
    /// `copy_async`
    #[token("copy_async")]
    CopyAsync,
    /// `wait`
    #[token("wait")]
    Wait,
    /// `sync`
    #[token("sync")]
    Sync,
    /// `static_assert`
    #[token("static_assert")]
    StaticAssert,
    /// `assume`
    #[token("assume")]
    Assume,
    /// `grid`
    #[token("grid")]
    Grid,
    /// `warps`
    #[token("warps")]
    Warps,
    /// `unroll`
    #[token("unroll")]
    Unroll,
    /// `true`
    #[token("true")]
    True,
    /// `false`
    #[token("false")]
    False,
    /// `type`
    #[token("type")]
    Type,
    /// A built-in function that takes generic arguments: `cast`, `view`, `zeros`, `ones`, `full`,
    /// `iota`.
    #[token("cast", |l| l.slice().to_string())]
    #[token("view", |l| l.slice().to_string())]
    #[token("zeros", |l| l.slice().to_string())]
    #[token("ones", |l| l.slice().to_string())]
    #[token("full", |l| l.slice().to_string())]
    #[token("iota", |l| l.slice().to_string())]
    GenericFn(String),

    // Punctuation.
    /// `(`
    #[token("(")]
    LParen,
    /// `)`
    #[token(")")]
    RParen,
    /// `[`
    #[token("[")]
    LBracket,
    /// `]`
    #[token("]")]
    RBracket,
    /// `{`
    #[token("{")]
    LBrace,
    /// `}`
    #[token("}")]
    RBrace,
    /// `<`
    #[token("<")]
    Lt,
    /// `>`
    #[token(">")]
    Gt,
    /// `<=`
    #[token("<=")]
    Le,
    /// `>=`
    #[token(">=")]
    Ge,
    /// `==`
    #[token("==")]
    EqEq,
    /// `!=`
    #[token("!=")]
    Ne,
    /// `=`
    #[token("=")]
    Assign,
    /// `+=`
    #[token("+=")]
    PlusAssign,
    /// `-=`
    #[token("-=")]
    MinusAssign,
    /// `*=`
    #[token("*=")]
    StarAssign,
    /// `/=`
    #[token("/=")]
    SlashAssign,
    /// `+`
    #[token("+")]
    Plus,
    /// `-`
    #[token("-")]
    Minus,
    /// `*`
    #[token("*")]
    Star,
    /// `/`
    #[token("/")]
    Slash,
    /// `%`
    #[token("%")]
    Percent,
    /// `&`
    #[token("&")]
    Amp,
    /// `|`
    #[token("|")]
    Pipe,
    /// `^`
    #[token("^")]
    Caret,
    /// `~`
    #[token("~")]
    Tilde,
    /// `!`
    #[token("!")]
    Bang,
    /// `&&`
    #[token("&&")]
    AndAnd,
    /// `||`
    #[token("||")]
    OrOr,
    /// `<<`
    #[token("<<")]
    Shl,
    /// `>>`
    #[token(">>")]
    Shr,
    /// `,`
    #[token(",")]
    Comma,
    /// `;`
    #[token(";")]
    Semi,
    /// `:`
    #[token(":")]
    Colon,
    /// `.`
    #[token(".")]
    Dot,
    /// `..`
    #[token("..")]
    DotDot,
    /// `@`
    #[token("@")]
    At,

    // Literals and names.
    /// An integer literal.
    #[regex(r"[0-9][0-9_]*", lex_int, priority = 6)]
    #[regex(r"0x[0-9a-fA-F_]+", lex_int, priority = 6)]
    #[regex(r"0b[01_]+", lex_int, priority = 6)]
    Int(IntTok),
    /// A float literal.
    #[regex(r"[0-9][0-9_]*\.[0-9][0-9_]*([eE][+-]?[0-9]+)?", lex_float, priority = 6)]
    #[regex(r"[0-9][0-9_]*[eE][+-]?[0-9]+", lex_float, priority = 6)]
    Float(FloatTok),
    /// Digits run into letters (`12ab`): never a valid token.
    #[regex(r"[0-9][0-9A-Za-z_]*", bad_number, priority = 1)]
    BadNumber,
    /// A string literal (value with escapes resolved).
    #[regex(r#""([^"\\\n]|\\[^\n])*""#, lex_string)]
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, unterminated_string, priority = 1)]
    Str(String),
    /// A name.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |l| l.slice().to_string())]
    Ident(String),
    /// A word spelled like a built-in type: `u3`, `i32`, `bf16`, `f6e3m2`, `e8m0`, `ue4m3`, `bool`.
    #[regex(r"(u|i|f|bf)[0-9]+", |l| l.slice().to_string(), priority = 10)]
    #[regex(r"f[0-9]+e[0-9]+m[0-9]+", |l| l.slice().to_string(), priority = 10)]
    #[regex(r"u?e[0-9]+m[0-9]+", |l| l.slice().to_string(), priority = 10)]
    #[token("bool", |l| l.slice().to_string())]
    TypeName(String),
    /// `/// text`: a doc comment (the text after `///`).
    #[regex(r"///[^\n]*", |l| l.slice()[3..].trim_end().to_string(), allow_greedy = true, priority = 20)]
    DocComment(String),
    /// `// text`: a comment (the whole text, slashes included).
    #[regex(r"//[^\n]*", |l| l.slice().trim_end().to_string(), allow_greedy = true, priority = 10)]
    Comment(String),

    /// Text that is no token; the lexer has reported it. Never produced by logos itself.
    Error(LexError),
}

fn bad_number(_: &mut logos::Lexer<Token>) -> Result<(), LexError> {
    Err(LexError::BadNumber)
}

fn unterminated_string(_: &mut logos::Lexer<Token>) -> Result<String, LexError> {
    Err(LexError::UnterminatedString)
}

fn lex_int(lex: &mut logos::Lexer<Token>) -> Result<IntTok, LexError> {
    let text = lex.slice();
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(b) = digits.strip_prefix("0b") {
        (2, b)
    } else {
        (10, digits.as_str())
    };
    if body.is_empty() {
        return Err(LexError::BadNumber);
    }
    u64::from_str_radix(body, radix)
        .map(|value| IntTok { value, text: text.to_string() })
        .map_err(|_| LexError::IntTooLarge)
}

fn lex_float(lex: &mut logos::Lexer<Token>) -> Result<FloatTok, LexError> {
    let text = lex.slice();
    let digits: String = text.chars().filter(|&c| c != '_').collect();
    match digits.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(FloatTok { value, text: text.to_string() }),
        _ => Err(LexError::FloatOutOfRange),
    }
}

fn lex_string(lex: &mut logos::Lexer<Token>) -> Result<String, LexError> {
    let text = lex.slice();
    let inner = &text[1..text.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                _ => return Err(LexError::BadEscape),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// One token with its byte range.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned {
    /// The token.
    pub token: Token,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// All tokens of `text`, comments included, in order. Lexical errors become [`Token::Error`]
/// tokens; adjacent invalid characters are merged into one error token.
pub fn tokenize(text: &str) -> Vec<Spanned> {
    let mut out: Vec<Spanned> = Vec::new();
    for (result, range) in Token::lexer(text).spanned() {
        let token = match result {
            Ok(t) => t,
            Err(e) => Token::Error(e),
        };
        if let (Token::Error(LexError::InvalidChar), Some(last)) = (&token, out.last_mut()) {
            if last.token == Token::Error(LexError::InvalidChar) && last.end == range.start {
                last.end = range.end;
                continue;
            }
        }
        out.push(Spanned { token, start: range.start, end: range.end });
    }
    out
}

/// True when `name` is spelled like a built-in type name (it lexes as one [`Token::TypeName`]).
pub fn is_type_name_spelling(name: &str) -> bool {
    let mut lex = Token::lexer(name);
    matches!(lex.next(), Some(Ok(Token::TypeName(_)))) && lex.next().is_none()
}

impl fmt::Display for Token {
    /// How a token is named in diagnostics: keywords and punctuation in backquotes, other tokens
    /// by kind and text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Int(t) => write!(f, "integer `{}`", t.text),
            Token::Float(t) => write!(f, "number `{}`", t.text),
            Token::Str(_) => write!(f, "a string"),
            Token::Ident(n) => write!(f, "name `{n}`"),
            Token::TypeName(n) => write!(f, "type name `{n}`"),
            Token::GenericFn(n) => write!(f, "`{n}`"),
            Token::DocComment(_) => write!(f, "doc comment"),
            Token::Comment(_) => write!(f, "comment"),
            Token::BadNumber | Token::Error(_) => write!(f, "invalid text"),
            other => write!(f, "`{}`", fixed_text(other).unwrap_or("?")),
        }
    }
}

/// The fixed spelling of a keyword or punctuation token.
pub fn fixed_text(t: &Token) -> Option<&'static str> {
    Some(match t {
        Token::Kernel => "kernel",
        Token::Let => "let",
        Token::Mut => "mut",
        Token::For => "for",
        Token::In => "in",
        Token::If => "if",
        Token::Else => "else",
        Token::While => "while",
        Token::Out => "out",
        Token::Global => "global",
        Token::Shared => "shared",
        Token::Load => "load",
        Token::Store => "store",
        Token::CopyAsync => "copy_async",
        Token::Wait => "wait",
        Token::Sync => "sync",
        Token::StaticAssert => "static_assert",
        Token::Assume => "assume",
        Token::Grid => "grid",
        Token::Warps => "warps",
        Token::Unroll => "unroll",
        Token::True => "true",
        Token::False => "false",
        Token::Type => "type",
        Token::LParen => "(",
        Token::RParen => ")",
        Token::LBracket => "[",
        Token::RBracket => "]",
        Token::LBrace => "{",
        Token::RBrace => "}",
        Token::Lt => "<",
        Token::Gt => ">",
        Token::Le => "<=",
        Token::Ge => ">=",
        Token::EqEq => "==",
        Token::Ne => "!=",
        Token::Assign => "=",
        Token::PlusAssign => "+=",
        Token::MinusAssign => "-=",
        Token::StarAssign => "*=",
        Token::SlashAssign => "/=",
        Token::Plus => "+",
        Token::Minus => "-",
        Token::Star => "*",
        Token::Slash => "/",
        Token::Percent => "%",
        Token::Amp => "&",
        Token::Pipe => "|",
        Token::Caret => "^",
        Token::Tilde => "~",
        Token::Bang => "!",
        Token::AndAnd => "&&",
        Token::OrOr => "||",
        Token::Shl => "<<",
        Token::Shr => ">>",
        Token::Comma => ",",
        Token::Semi => ";",
        Token::Colon => ":",
        Token::Dot => ".",
        Token::DotDot => "..",
        Token::At => "@",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Token> {
        tokenize(text).into_iter().map(|s| s.token).collect()
    }

    #[test]
    fn type_names_keywords_and_idents_are_told_apart() {
        assert_eq!(
            kinds("u3 f6e3m2 e8m0 ue4m3 bf16 bool f8e4 i32x kernel kernels"),
            vec![
                Token::TypeName("u3".into()),
                Token::TypeName("f6e3m2".into()),
                Token::TypeName("e8m0".into()),
                Token::TypeName("ue4m3".into()),
                Token::TypeName("bf16".into()),
                Token::TypeName("bool".into()),
                Token::Ident("f8e4".into()),
                Token::Ident("i32x".into()),
                Token::Kernel,
                Token::Ident("kernels".into()),
            ]
        );
    }

    #[test]
    fn numbers_ranges_and_bad_numbers() {
        assert_eq!(
            kinds("0..16 1.5 2e3 0x1F 12ab"),
            vec![
                Token::Int(IntTok { value: 0, text: "0".into() }),
                Token::DotDot,
                Token::Int(IntTok { value: 16, text: "16".into() }),
                Token::Float(FloatTok { value: 1.5, text: "1.5".into() }),
                Token::Float(FloatTok { value: 2000.0, text: "2e3".into() }),
                Token::Int(IntTok { value: 31, text: "0x1F".into() }),
                Token::Error(LexError::BadNumber),
            ]
        );
        assert_eq!(kinds("99999999999999999999"), vec![Token::Error(LexError::IntTooLarge)]);
    }

    #[test]
    fn comments_docs_strings_and_invalid_chars() {
        let toks = tokenize("/// doc  \n// note\n\"a\\\"b\" $$ \"open");
        let k: Vec<Token> = toks.iter().map(|s| s.token.clone()).collect();
        assert_eq!(
            k,
            vec![
                Token::DocComment(" doc".into()),
                Token::Comment("// note".into()),
                Token::Str("a\"b".into()),
                Token::Error(LexError::InvalidChar),
                Token::Error(LexError::UnterminatedString),
            ]
        );
        // The two `$` are one error token.
        assert_eq!((toks[3].start, toks[3].end), (25, 27));
    }
}
