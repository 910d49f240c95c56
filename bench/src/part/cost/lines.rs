//! Lines of code and of comments, the way tokei counts them, for the few
//! languages this workspace is written in: Rust and protobuf (`//` and
//! nested `/* */`, strings and character literals skipped), and YAML,
//! TOML, shell and Dockerfiles (`#`). A line with any code on it is code;
//! a line with only a comment (doc comments included) is a comment; blank
//! lines are neither. tokei did this job until its dozens of crates
//! (a template engine among its build dependencies) were the heaviest part
//! of the harness's build for one function; on this workspace the two
//! agree on code lines but where tokei took a character literal `'"'`
//! for the start of a string (about 20 lines of the edge).

use std::path::Path;

/// The comment syntax of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Syntax {
    /// `//` and nested `/* */`, with strings and character literals.
    CStyle,
    /// `#` to the end of the line.
    Hash,
}

impl Syntax {
    /// The syntax of a file counted as code, by its name; `None` for any
    /// other file (Markdown, JSON, …).
    pub(super) fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?;
        if name == "Dockerfile" || name.ends_with(".Dockerfile") {
            return Some(Syntax::Hash);
        }
        match path.extension()?.to_str()? {
            "rs" | "proto" => Some(Syntax::CStyle),
            "yml" | "yaml" | "toml" | "sh" => Some(Syntax::Hash),
            _ => None,
        }
    }
}

/// Lines of code and lines of comments of `text`.
pub(super) fn count(text: &str, syntax: Syntax) -> (u64, u64) {
    match syntax {
        Syntax::Hash => count_hash(text),
        Syntax::CStyle => count_c_style(text),
    }
}

fn count_hash(text: &str) -> (u64, u64) {
    let (mut code, mut comments) = (0, 0);
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') && !line.starts_with("#!") {
            comments += 1;
        } else {
            code += 1;
        }
    }
    (code, comments)
}

/// Where the scanner is between characters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    /// In a string; raw strings remember their `#`s (`None`: a normal
    /// string, where `\` escapes).
    Str(Option<usize>),
    /// In a block comment, this deep.
    Block(usize),
}

fn count_c_style(text: &str) -> (u64, u64) {
    let (mut code, mut comments) = (0, 0);
    let mut state = State::Code;
    for line in text.lines() {
        // A line inside a string is the string's, blank or not.
        let (mut has_code, mut has_comment) = (matches!(state, State::Str(_)), false);
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match state {
                State::Block(depth) => {
                    has_comment = true;
                    if c == '*' && next == Some('/') {
                        state = if depth == 1 {
                            State::Code
                        } else {
                            State::Block(depth - 1)
                        };
                        i += 1;
                    } else if c == '/' && next == Some('*') {
                        state = State::Block(depth + 1);
                        i += 1;
                    }
                }
                State::Str(raw) => {
                    has_code = true;
                    match raw {
                        None if c == '\\' => i += 1,
                        None if c == '"' => state = State::Code,
                        Some(hashes)
                            if c == '"'
                                && chars[i + 1..].iter().take(hashes).all(|h| *h == '#')
                                && chars.len() > i + hashes =>
                        {
                            state = State::Code;
                            i += hashes;
                        }
                        _ => {}
                    }
                }
                State::Code => {
                    if c.is_whitespace() {
                    } else if c == '/' && next == Some('/') {
                        has_comment = true;
                        break;
                    } else if c == '/' && next == Some('*') {
                        has_comment = true;
                        state = State::Block(1);
                        i += 1;
                    } else {
                        has_code = true;
                        if c == '"' {
                            state = State::Str(None);
                        } else if c == 'r' && matches!(next, Some('"' | '#')) {
                            let hashes = chars[i + 1..].iter().take_while(|h| **h == '#').count();
                            if chars.get(i + 1 + hashes) == Some(&'"') {
                                state = State::Str(Some(hashes));
                                i += 1 + hashes;
                            }
                        } else if c == '\'' {
                            // A character literal ('x', '\n', '"'), not a
                            // lifetime ('a): skip it whole.
                            if next == Some('\\') {
                                if let Some(end) = chars
                                    .get(i + 3..)
                                    .and_then(|rest| rest.iter().position(|q| *q == '\''))
                                {
                                    i += 3 + end;
                                }
                            } else if chars.get(i + 2) == Some(&'\'') {
                                i += 2;
                            }
                        }
                    }
                }
            }
            i += 1;
        }
        if has_code {
            code += 1;
        } else if has_comment || matches!(state, State::Block(_)) {
            comments += 1;
        }
    }
    (code, comments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_code_comments_and_blanks_are_told_apart() {
        let text = r##"//! A module doc.

/// A doc comment.
fn main() { // a trailing comment: the line is code
    let s = "not // a comment, not /* a block";
    let c = '"';
    let q = '\'';
    let r = r#"a "raw" string // still code"#;
    /* a block
       over lines /* nested */
    still the block */
    let after = 1; /* then a comment */
    let life: &'static str = "x";
}
"##;
        // Code: fn, let s, let c, let q, let r, let after, let life, }: 8.
        // Comments: the module doc, the doc, the three block lines: 5.
        assert_eq!(count(text, Syntax::CStyle), (8, 5));
    }

    #[test]
    fn hash_comments_and_shebangs() {
        let text = "#!/bin/sh\n# a comment\n\nset -eu # trailing\nkey: value\n";
        assert_eq!(count(text, Syntax::Hash), (3, 1));
    }

    #[test]
    fn a_file_counts_by_its_name() {
        assert_eq!(Syntax::of(Path::new("a/b.rs")), Some(Syntax::CStyle));
        assert_eq!(Syntax::of(Path::new("x.proto")), Some(Syntax::CStyle));
        assert_eq!(Syntax::of(Path::new("k8s/base/a.yaml")), Some(Syntax::Hash));
        assert_eq!(Syntax::of(Path::new("Dockerfile")), Some(Syntax::Hash));
        assert_eq!(Syntax::of(Path::new("README.md")), None);
    }
}
