//! Nesting limits, so hostile input gets an `E_DECL_TOO_DEEP` finding
//! instead of exhausting the stack (a stack overflow aborts the whole
//! process).
//!
//! Both parsers and our walks recurse once per nesting level. The Python
//! parser grows its own stack, but dropping or walking its tree recurses;
//! the TypeScript parser recurses on its thread's stack with no limit. So:
//!
//! - every front end runs on a thread with a known, large stack
//!   ([`PARSE_STACK`], see [`crate::compile_declaration`]);
//! - TypeScript is scanned *before* parsing ([`scan_typescript`]): brackets
//!   deeper than [`MAX_BRACKETS`], or a run of more than [`MAX_RUN`]
//!   prefix/right-recursive tokens (`!!!…`, `a ? b : c ? …`, `x => y => …`,
//!   `if (a) if (b) …`) is refused;
//! - Python brackets are counted on the parser's tokens ([`python_brackets`]);
//! - both syntax trees are then walked with a depth limit
//!   ([`MAX_TREE_DEPTH`]) before anything else walks or drops them.
//!
//! Real declarations use a handful of levels; the limits are far above that
//! and far below what [`PARSE_STACK`] can hold.

use mvm_ir::Code;
use ruff_python_ast::token::{Token, TokenKind};
use ruff_text_size::Ranged;

use crate::diag::Diag;

/// Brackets (`(`, `[`, `{`, `${`) open at once.
pub const MAX_BRACKETS: usize = 256;
/// Syntax-tree nodes (expressions, statements) nested inside each other.
pub const MAX_TREE_DEPTH: usize = 1_000;
/// TypeScript tokens that can nest without a bracket, pending at once.
pub const MAX_RUN: usize = 5_000;
/// The front ends' thread stack. Measured worst case at the limits above is
/// under 10 MiB (debug build); the rest is headroom. Only touched pages
/// are committed.
pub const PARSE_STACK: usize = 256 << 20;

const HINT: &str = "declarations need only a few levels of nesting; this limit keeps hostile input from exhausting the compiler's stack";

pub fn brackets_too_deep(at: usize) -> Diag {
    Diag::new(
        Code::EDeclTooDeep,
        at,
        format!("brackets are nested more than {MAX_BRACKETS} deep here"),
        HINT,
    )
}

pub fn tree_too_deep(at: usize) -> Diag {
    Diag::new(
        Code::EDeclTooDeep,
        at,
        format!("expressions or statements are nested more than {MAX_TREE_DEPTH} deep here"),
        HINT,
    )
}

fn run_too_long(at: usize) -> Diag {
    Diag::new(
        Code::EDeclTooDeep,
        at,
        format!(
            "more than {MAX_RUN} operators or keywords nest here without a break (`!!!…`, `a ? b : c ? …`, `x => y => …`, `if (a) if (b) …`)"
        ),
        HINT,
    )
}

/// Python brackets, counted on the parser's own tokens (so strings and
/// comments are already told apart).
pub fn python_brackets(tokens: &[Token]) -> Result<(), Diag> {
    let mut depth = 0usize;
    for t in tokens {
        match t.kind() {
            TokenKind::Lpar | TokenKind::Lsqb | TokenKind::Lbrace => {
                depth += 1;
                if depth > MAX_BRACKETS {
                    return Err(brackets_too_deep(t.start().to_usize()));
                }
            }
            TokenKind::Rpar | TokenKind::Rsqb | TokenKind::Rbrace => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
    }
    Ok(())
}

/// The previous significant token, as far as the scan needs to know it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    Start,
    /// Ends an operand: `/` after it divides, a newline after it may end the statement.
    Operand,
    /// The `)` closing `if (…)`, `while (…)`, `for (…)`, `with (…)`: a statement follows.
    ControlParen,
    /// An operator or punctuator after which an operand is expected.
    Operator,
    /// A keyword after which an operand is expected (`return`, `typeof`, ...).
    KeywordOperand,
    /// A property name after `.`: an operand, whatever its spelling.
    Property,
    Dot,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Paren {
        control: bool,
    },
    Other,
    /// `${` inside a template literal: its `}` resumes the template.
    Template,
}

struct Level {
    open: Open,
    /// The run pending when the bracket opened, restored when it closes.
    run_before: usize,
    /// [`Scan::angles`] when the bracket opened.
    angles_before: usize,
}

/// Keywords after which an expression may nest without a bracket.
const NESTING_KEYWORDS: &[&str] = &[
    "typeof",
    "void",
    "delete",
    "await",
    "new",
    "yield",
    "if",
    "else",
    "while",
    "for",
    "do",
    "with",
    "extends",
    "keyof",
    "infer",
    "readonly",
    "unique",
    "asserts",
    "is",
    "async",
    "declare",
    "export",
    "abstract",
    "static",
    "accessor",
    "namespace",
    "module",
];
/// Keywords after which `/` starts a regular expression.
const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];
const CONTROL: &[&str] = &["if", "while", "for", "with"];
/// Keywords that continue an expression from the previous line (no ASI before them).
const CONTINUES: &[&str] = &["instanceof", "in", "as", "satisfies", "else", "of"];

/// Refuses TypeScript nested beyond the limits, before the parser sees it.
///
/// A lexer-level scan: comments, strings, template literals (with `${}`
/// nesting) and regular expressions are skipped, brackets are counted, and
/// a "run" counts tokens that can nest without a bracket; it ends where the
/// parser is known to unwind (`,`, `;` not followed by `else`, a newline
/// that ends a statement, the bracket's close).
pub fn scan_typescript(source: &str) -> Result<(), Diag> {
    Scan {
        s: source.as_bytes(),
        i: 0,
        levels: Vec::new(),
        run: 0,
        angles: 0,
        prev: Prev::Start,
        prev_word: "",
        newline: false,
        semicolon: false,
        control_next_paren: false,
    }
    .run(source)
}

struct Scan<'s> {
    s: &'s [u8],
    i: usize,
    levels: Vec<Level>,
    /// Pending nesting tokens, in this level and those enclosing it.
    run: usize,
    /// `<` not yet matched by `>` in this level and statement: type
    /// arguments nest across `,` (`A<1, A<1, …>>`), so a `,` keeps them.
    angles: usize,
    prev: Prev,
    prev_word: &'s str,
    /// A line break since the previous token.
    newline: bool,
    /// A `;` was the previous token (the run ends unless `else` follows).
    semicolon: bool,
    /// The previous token was `if`/`while`/`for`/`with`: the next `(` is a condition.
    control_next_paren: bool,
}

impl<'s> Scan<'s> {
    fn run(mut self, source: &'s str) -> Result<(), Diag> {
        if self.s.starts_with(b"#!") {
            self.skip_line();
        }
        while self.i < self.s.len() {
            let c = self.s[self.i];
            let start = self.i;
            match c {
                b'\n' | b'\r' => {
                    self.newline = true;
                    self.i += 1;
                }
                b' ' | b'\t' | 0x0b | 0x0c => self.i += 1,
                b'/' if self.peek(1) == Some(b'/') => self.skip_line(),
                b'/' if self.peek(1) == Some(b'*') => self.skip_block_comment(),
                b'/' if self.regex_allowed() => {
                    self.token_start(Some(b'/'), "");
                    self.skip_regex();
                    self.prev = Prev::Operand;
                }
                b'\'' | b'"' => {
                    self.token_start(Some(c), "");
                    self.skip_string(c);
                    self.prev = Prev::Operand;
                }
                b'`' => {
                    self.token_start(Some(c), "");
                    self.i += 1;
                    self.template()?;
                }
                b'0'..=b'9' => {
                    self.token_start(Some(c), "");
                    self.skip_word();
                    self.prev = Prev::Operand;
                }
                b'.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => {
                    self.token_start(Some(c), "");
                    self.skip_word();
                    self.prev = Prev::Operand;
                }
                c if is_word_byte(c) || c == b'#' || c == b'\\' => {
                    self.i += 1;
                    self.skip_word();
                    let word = &source[start..self.i];
                    self.word(start, word)?;
                }
                _ => self.punctuator(start)?,
            }
        }
        Ok(())
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    fn regex_allowed(&self) -> bool {
        // Only where `/` cannot divide: after an operator, an opening
        // bracket, the start, or a keyword that takes an operand.
        matches!(
            self.prev,
            Prev::Start | Prev::Operator | Prev::KeywordOperand | Prev::ControlParen
        )
    }

    /// Book-keeping at the start of every significant token: ends the run
    /// where a statement ended. `first` is its first byte, `word` its text
    /// for identifiers and keywords.
    fn token_start(&mut self, first: Option<u8>, word: &str) {
        let continues = match first {
            Some(b) if !word.is_empty() => !is_word_byte(b) || CONTINUES.contains(&word),
            // Operators and `(`/`[`/template continue an expression across
            // a line break; `!`, `~`, `++`, `--`, `@`, `{`, `;` and literals do not.
            Some(b) => !matches!(
                b,
                b'!' | b'~' | b'@' | b'{' | b';' | b'\'' | b'"' | b'0'..=b'9' | b'#'
            ),
            None => false,
        };
        let increment = first == Some(b'+') || first == Some(b'-');
        let new_statement = (self.newline
            && matches!(self.prev, Prev::Operand | Prev::Property)
            && (!continues || (increment && self.peek(1) == first)))
            || (self.semicolon && word != "else");
        if new_statement {
            self.run = self.levels.last().map_or(0, |l| l.run_before);
            self.angles = 0;
        }
        self.newline = false;
        self.semicolon = false;
        self.prev_word = "";
    }

    fn count(&mut self, at: usize) -> Result<(), Diag> {
        self.run += 1;
        if self.run > MAX_RUN {
            return Err(run_too_long(at));
        }
        Ok(())
    }

    fn word(&mut self, at: usize, word: &'s str) -> Result<(), Diag> {
        self.token_start(word.bytes().next(), word);
        if self.prev == Prev::Dot {
            self.prev = Prev::Property;
            self.prev_word = word;
            self.control_next_paren = false;
            return Ok(());
        }
        if NESTING_KEYWORDS.contains(&word) {
            self.count(at)?;
        }
        // `for await (...)`: the parenthesis is still the loop's.
        self.control_next_paren =
            CONTROL.contains(&word) || (word == "await" && self.control_next_paren);
        self.prev = if REGEX_AFTER.contains(&word) {
            Prev::KeywordOperand
        } else {
            Prev::Operand
        };
        self.prev_word = word;
        Ok(())
    }

    fn open(&mut self, at: usize, open: Open) -> Result<(), Diag> {
        if self.levels.len() >= MAX_BRACKETS {
            return Err(brackets_too_deep(at));
        }
        self.levels.push(Level {
            open,
            run_before: self.run,
            angles_before: std::mem::take(&mut self.angles),
        });
        self.prev = Prev::Operator;
        Ok(())
    }

    fn close(&mut self) -> Prev {
        match self.levels.pop() {
            Some(level) => {
                self.run = level.run_before;
                self.angles = level.angles_before;
                if level.open == (Open::Paren { control: true }) {
                    Prev::ControlParen
                } else {
                    Prev::Operand
                }
            }
            None => Prev::Operand,
        }
    }

    fn punctuator(&mut self, at: usize) -> Result<(), Diag> {
        let c = self.s[self.i];
        let after_name = self.prev == Prev::Operand && !self.prev_word.is_empty();
        self.token_start(Some(c), "");
        let control = std::mem::take(&mut self.control_next_paren);
        let rest = &self.s[self.i..];
        let len = punctuator_len(rest);
        let op = &rest[..len];
        self.i += len;
        match op {
            b"(" => return self.open(at, Open::Paren { control }),
            b"[" | b"{" => return self.open(at, Open::Other),
            b")" | b"]" => {
                self.prev = self.close();
                return Ok(());
            }
            b"}" => {
                if self.levels.last().is_some_and(|l| l.open == Open::Template) {
                    if let Some(l) = self.levels.pop() {
                        self.run = l.run_before;
                        self.angles = l.angles_before;
                    }
                    return self.template();
                }
                self.prev = self.close();
                return Ok(());
            }
            b";" => {
                self.semicolon = true;
                self.prev = Prev::Operator;
                return Ok(());
            }
            b"," => {
                self.run = self.levels.last().map_or(0, |l| l.run_before) + self.angles;
                self.prev = Prev::Operator;
                return Ok(());
            }
            b"." | b"?." => {
                self.prev = Prev::Dot;
                return Ok(());
            }
            _ => {}
        }
        // A postfix `++`/`--` ends an operand; as a prefix it nests.
        if (op == b"++" || op == b"--") && matches!(self.prev, Prev::Operand | Prev::Property) {
            self.prev = Prev::Operand;
            return Ok(());
        }
        match op {
            b"<" => self.angles += 1,
            b">" | b">>" | b">>>" => self.angles = self.angles.saturating_sub(op.len()),
            _ => {}
        }
        if nests(op) {
            self.count(at)?;
        } else if op == b":" && after_name {
            // `name:` may be a label, which nests its statement.
            self.count(at)?;
        }
        self.prev = Prev::Operator;
        Ok(())
    }

    /// Template literal text up to its end or a `${`, which opens a level.
    fn template(&mut self) -> Result<(), Diag> {
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'`' => {
                    self.i += 1;
                    self.prev = Prev::Operand;
                    self.prev_word = "";
                    return Ok(());
                }
                b'$' if self.peek(1) == Some(b'{') => {
                    let open_at = self.i;
                    self.i += 2;
                    self.open(open_at, Open::Template)?;
                    return Ok(());
                }
                _ => self.i += 1,
            }
        }
        Ok(())
    }

    fn skip_line(&mut self) {
        while self.i < self.s.len() && self.s[self.i] != b'\n' {
            self.i += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        self.i += 2;
        while self.i < self.s.len() {
            if self.s[self.i] == b'\n' {
                self.newline = true;
            }
            if self.s[self.i] == b'*' && self.peek(1) == Some(b'/') {
                self.i += 2;
                return;
            }
            self.i += 1;
        }
    }

    fn skip_string(&mut self, quote: u8) {
        self.i += 1;
        self.prev_word = "";
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'\n' => return,
                q if q == quote => {
                    self.i += 1;
                    return;
                }
                _ => self.i += 1,
            }
        }
    }

    fn skip_regex(&mut self) {
        self.i += 1;
        self.prev_word = "";
        let mut class = false;
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'\\' => self.i += 2,
                b'\n' => return,
                b'[' => {
                    class = true;
                    self.i += 1;
                }
                b']' => {
                    class = false;
                    self.i += 1;
                }
                b'/' if !class => {
                    self.i += 1;
                    self.skip_word();
                    return;
                }
                _ => self.i += 1,
            }
        }
    }

    fn skip_word(&mut self) {
        while self.i < self.s.len() && (is_word_byte(self.s[self.i]) || self.s[self.i] == b'\\') {
            self.i += 1;
        }
    }
}

/// Identifier bytes; anything non-ASCII is taken as part of a name.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Operators after which an operand nests without a bracket: prefix
/// operators, assignments, `?`, `=>`, `**`, `...`, `<` (type arguments), `@`.
fn nests(op: &[u8]) -> bool {
    match op {
        b"!" | b"~" | b"+" | b"-" | b"++" | b"--" | b"?" | b"=>" | b"**" | b"..." | b"<" | b"@" => {
            true
        }
        // `=`, `+=`, `**=`, `??=`, ... but not comparisons.
        _ => {
            op.last() == Some(&b'=')
                && !matches!(op, b"==" | b"===" | b"!=" | b"!==" | b"<=" | b">=")
        }
    }
}

/// Length of the punctuator at the start of `rest` (longest match; any
/// other byte is one token).
fn punctuator_len(rest: &[u8]) -> usize {
    const MULTI: &[&[u8]] = &[
        b">>>=", b"...", b"===", b"!==", b"**=", b"<<=", b">>=", b">>>", b"&&=", b"||=", b"??=",
        b"=>", b"==", b"!=", b"<=", b">=", b"&&", b"||", b"??", b"?.", b"++", b"--", b"+=", b"-=",
        b"*=", b"/=", b"%=", b"&=", b"|=", b"^=", b"**", b"<<", b">>",
    ];
    for m in MULTI {
        if rest.starts_with(m) {
            // `a?.5:b` is a conditional, not optional chaining.
            if *m == b"?." && rest.get(2).is_some_and(|d| d.is_ascii_digit()) {
                return 1;
            }
            return m.len();
        }
    }
    1
}

/// The depth of a syntax-tree walk, limited to [`MAX_TREE_DEPTH`]; the
/// Python and TypeScript walks share it.
#[derive(Debug, Default)]
pub struct Depth {
    depth: usize,
    /// Where (byte offset) the limit was first passed.
    pub too_deep: Option<usize>,
}

impl Depth {
    /// Enters one level; false (and nothing is to be walked) past the limit.
    pub fn enter(&mut self, at: usize) -> bool {
        if self.too_deep.is_some() {
            return false;
        }
        if self.depth >= MAX_TREE_DEPTH {
            self.too_deep = Some(at);
            return false;
        }
        self.depth += 1;
        true
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The walk's result: the finding if the limit was passed.
    pub fn finish<T>(&self, value: T) -> Result<T, Diag> {
        match self.too_deep {
            Some(at) => Err(tree_too_deep(at)),
            None => Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(src: &str) -> Option<usize> {
        scan_typescript(src).err().map(|d| d.at)
    }

    #[test]
    fn ordinary_code_passes() {
        let src = r#"
import * as mvm from "mvm-sdk";
// a comment with ((((( and `backticks`
/* and {{{{ */
const re = /[(]+\/"`/g, s = "(((", t = '[[[', u = `${ "((" + `${1}` }`;
export const f = mvm.app({ name: "x" })((a: string): string => a ? "y" : !a ? "z" : a);
if (a) b(); else if (c) d(); else e();
x = a / b / (c) / 2;
"#;
        assert_eq!(code(src), None);
        // Many statements and list items never add up to a run.
        let long = "x = !a ? b : c;\n".repeat(20_000);
        assert_eq!(code(&long), None);
        let asi = "let x = !a\nlet y = typeof b\n".repeat(10_000);
        assert_eq!(code(&asi), None);
        let list = format!("f({});", "!a, ".repeat(20_000));
        assert_eq!(code(&list), None);
    }

    #[test]
    fn deep_brackets_are_refused_where_they_cross_the_limit() {
        let src = format!("x = {}1{};", "(".repeat(300), ")".repeat(300));
        assert_eq!(code(&src), Some(4 + MAX_BRACKETS));
        let tpl = format!("x = {}1{};", "`${".repeat(300), "}`".repeat(300));
        assert!(code(&tpl).is_some());
        // Brackets inside strings, comments and regexes do not count.
        let quoted = format!(
            "x = \"{}\"; // {}\ny = /{}/;",
            "(".repeat(300),
            "[".repeat(300),
            "\\(".repeat(300)
        );
        assert_eq!(code(&quoted), None);
    }

    #[test]
    fn bracketless_chains_are_refused() {
        for src in [
            format!("x = {}1;", "!".repeat(10_000)),
            format!("x = {}1;", "1 ? 1 : ".repeat(10_000)),
            format!("x = {}1;", "a => ".repeat(10_000)),
            format!("{}x;", "if (1)\n".repeat(10_000)),
            format!("if (1) x;{}", " else if (1) x;".repeat(10_000)),
            format!("x = {}a;", "new ".repeat(10_000)),
            format!("x = {}a;", "typeof\n".repeat(10_000)),
            format!("{}x;", "a:\n".repeat(10_000)),
            format!("x = {}1;", "a =\n".repeat(10_000)),
            format!("type T = {}1;", "A extends B ? 1 : ".repeat(10_000)),
        ] {
            assert!(code(&src).is_some(), "not refused: {}", &src[..40]);
        }
    }
}
