//! The xl.cfg syntax, without meaning: `KEY = VALUE` settings, where a
//! value is a "double" or 'single' quoted string, a non-negative integer,
//! or a list `[ 'a', 'b' ]` of those (lists may span lines and end with a
//! comma). `#` starts a comment; a setting ends at a newline or `;`.
//! Every setting and value keeps its line and column for messages.

use std::fmt;

/// A 1-based line and column (columns count characters), in a config file
/// or in a policy's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

/// What a value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A quoted string, escapes resolved.
    String(String),
    /// A non-negative integer (decimal or `0x` hex).
    Integer(u64),
    /// A list of strings and integers.
    List(Vec<Value>),
}

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The value.
    pub kind: ValueKind,
    /// Where it starts.
    pub position: Position,
}

impl Value {
    /// What kind of value this is, for "expected ..., found ..." messages.
    pub fn describe(&self) -> &'static str {
        match self.kind {
            ValueKind::String(_) => "a string",
            ValueKind::Integer(_) => "an integer",
            ValueKind::List(_) => "a list",
        }
    }
}

/// One `KEY = VALUE` setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// Where the key starts.
    pub position: Position,
    /// The value.
    pub value: Value,
}

/// A syntax error: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the problem is.
    pub position: Position,
    /// What was expected or found.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}: {}", self.position, self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Parses `text` into its settings, in order. Keys are not interpreted.
pub fn parse(text: &str) -> Result<Vec<Setting>, SyntaxError> {
    let mut parser = Parser {
        characters: text.chars().collect(),
        index: 0,
        line: 1,
        column: 1,
    };
    let mut settings = Vec::new();
    loop {
        parser.skip_blanks_and_comments();
        match parser.peek() {
            None => return Ok(settings),
            Some('\n' | ';') => parser.advance(),
            Some(_) => settings.push(parser.setting()?),
        }
    }
}

struct Parser {
    characters: Vec<char>,
    index: usize,
    line: usize,
    column: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.characters.get(self.index).copied()
    }

    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    fn advance(&mut self) {
        if let Some(character) = self.peek() {
            self.index += 1;
            if character == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            position: self.position(),
            message: message.into(),
        })
    }

    /// What is at the cursor, for messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of file".to_string(),
            Some('\n') => "end of line".to_string(),
            Some(character) if character.is_control() => {
                format!("'{}'", character.escape_default())
            }
            Some(character) => format!("'{character}'"),
        }
    }

    /// Skips spaces, tabs, carriage returns and a comment (not newlines).
    fn skip_blanks_and_comments(&mut self) {
        while let Some(character) = self.peek() {
            match character {
                ' ' | '\t' | '\r' => self.advance(),
                '#' => {
                    while self.peek().is_some_and(|character| character != '\n') {
                        self.advance();
                    }
                }
                _ => break,
            }
        }
    }

    /// Skips blanks, comments and newlines (inside a list).
    fn skip_whitespace(&mut self) {
        loop {
            self.skip_blanks_and_comments();
            if self.peek() == Some('\n') {
                self.advance();
            } else {
                break;
            }
        }
    }

    fn setting(&mut self) -> Result<Setting, SyntaxError> {
        let position = self.position();
        if !self
            .peek()
            .is_some_and(|character| character.is_ascii_alphabetic() || character == '_')
        {
            return self.error(format!(
                "expected a key (a name like 'memory'), found {}",
                self.found()
            ));
        }
        let mut key = String::new();
        while let Some(character) = self
            .peek()
            .filter(|&character| character.is_ascii_alphanumeric() || character == '_')
        {
            key.push(character);
            self.advance();
        }
        self.skip_blanks_and_comments();
        if self.peek() != Some('=') {
            return self.error(format!(
                "expected '=' after key '{key}', found {}",
                self.found()
            ));
        }
        self.advance();
        self.skip_blanks_and_comments();
        let value = self.value(true)?;
        self.skip_blanks_and_comments();
        match self.peek() {
            None | Some('\n' | ';') => Ok(Setting {
                key,
                position,
                value,
            }),
            Some(_) => self.error(format!(
                "expected end of line or ';' after the value of '{key}', found {}",
                self.found()
            )),
        }
    }

    fn value(&mut self, list_allowed: bool) -> Result<Value, SyntaxError> {
        let position = self.position();
        let kind = match self.peek() {
            Some(quote @ ('"' | '\'')) => ValueKind::String(self.string(quote)?),
            Some('0'..='9') => ValueKind::Integer(self.integer()?),
            Some('[') if list_allowed => ValueKind::List(self.list()?),
            Some('[') => {
                return self.error("expected a string or an integer; lists cannot be nested")
            }
            _ => {
                let expected = if list_allowed {
                    "a value (a quoted string, an integer or a list)"
                } else {
                    "a string or an integer"
                };
                return self.error(format!("expected {expected}, found {}", self.found()));
            }
        };
        Ok(Value { kind, position })
    }

    fn string(&mut self, quote: char) -> Result<String, SyntaxError> {
        let start = self.position();
        self.advance();
        let mut text = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => {
                    return Err(SyntaxError {
                        position: start,
                        message: format!(
                            "unterminated string: expected a closing {quote} on the same line"
                        ),
                    })
                }
                Some(character) if character == quote => {
                    self.advance();
                    return Ok(text);
                }
                Some('\\') if quote == '"' => {
                    self.advance();
                    let escaped = match self.peek() {
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some(character @ ('\\' | '"' | '\'')) => character,
                        _ => {
                            return self.error(format!(
                                "unknown escape '\\{}': expected \\\\, \\\", \\', \\n or \\t",
                                self.peek()
                                    .map_or(String::new(), |character| character.to_string())
                            ))
                        }
                    };
                    text.push(escaped);
                    self.advance();
                }
                Some(character) => {
                    text.push(character);
                    self.advance();
                }
            }
        }
    }

    fn integer(&mut self) -> Result<u64, SyntaxError> {
        let start = self.position();
        let mut digits = String::new();
        while let Some(character) = self
            .peek()
            .filter(|character| character.is_ascii_alphanumeric() || *character == '_')
        {
            digits.push(character);
            self.advance();
        }
        let parsed = match digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
        {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => digits.parse(),
        };
        parsed.map_err(|error| SyntaxError {
            position: start,
            message: match error.kind() {
                std::num::IntErrorKind::PosOverflow => format!("integer '{digits}' is too large"),
                _ => format!("expected an integer (decimal or 0x hex), found '{digits}'"),
            },
        })
    }

    fn list(&mut self) -> Result<Vec<Value>, SyntaxError> {
        self.advance();
        let mut items = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some(']') {
                self.advance();
                return Ok(items);
            }
            items.push(self.value(false)?);
            self.skip_whitespace();
            match self.peek() {
                Some(',') => self.advance(),
                Some(']') => {}
                _ => {
                    return self.error(format!(
                        "expected ',' or ']' in list, found {}",
                        self.found()
                    ))
                }
            }
        }
    }
}
