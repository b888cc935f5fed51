//! The policy language's lexer and parser: text to statements, each part
//! with its position. Names are not looked up here (see `resolve`).

use super::{CompileError, ErrorKind, Position};

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Token {
    kind: TokenKind,
    position: Position,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenKind {
    Word(String),
    Semicolon,
    Comma,
    Colon,
    OpenBrace,
    CloseBrace,
    Star,
    End,
}

const KEYWORDS: [&str; 6] = [
    "type",
    "attribute",
    "typeattribute",
    "allow",
    "neverallow",
    "self",
];

impl TokenKind {
    fn describe(&self) -> String {
        match self {
            Self::Word(word) if KEYWORDS.contains(&word.as_str()) => format!("keyword '{word}'"),
            Self::Word(word) => format!("'{word}'"),
            Self::Semicolon => "';'".to_string(),
            Self::Comma => "','".to_string(),
            Self::Colon => "':'".to_string(),
            Self::OpenBrace => "'{'".to_string(),
            Self::CloseBrace => "'}'".to_string(),
            Self::Star => "'*'".to_string(),
            Self::End => "end of input".to_string(),
        }
    }
}

/// A name as written, with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Name {
    pub(super) text: String,
    pub(super) position: Position,
}

/// `allow` or `neverallow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RuleKind {
    Allow,
    Neverallow,
}

/// The classes of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Classes {
    /// `: *` (neverallow only): every permission of every class.
    All,
    /// One or more named classes.
    Named(Vec<Name>),
}

/// The permissions of a rule: `None` for `*`.
pub(super) type Permissions = Option<Vec<Name>>;

/// One statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Statement {
    Type {
        name: Name,
        attributes: Vec<Name>,
    },
    Attribute {
        name: Name,
    },
    TypeAttribute {
        type_name: Name,
        attributes: Vec<Name>,
    },
    Rule {
        kind: RuleKind,
        position: Position,
        sources: Vec<Name>,
        targets: Vec<Name>,
        classes: Classes,
        permissions: Permissions,
    },
}

fn tokenize(text: &str) -> Result<Vec<Token>, CompileError> {
    let mut tokens = Vec::new();
    for (line_index, line) in text.lines().enumerate() {
        let mut characters = line.chars().enumerate().peekable();
        while let Some((column_index, character)) = characters.next() {
            let position = Position {
                line: line_index + 1,
                column: column_index + 1,
            };
            let kind = match character {
                '#' => break,
                ';' => TokenKind::Semicolon,
                ',' => TokenKind::Comma,
                ':' => TokenKind::Colon,
                '{' => TokenKind::OpenBrace,
                '}' => TokenKind::CloseBrace,
                '*' => TokenKind::Star,
                character if character.is_whitespace() => continue,
                character if character.is_ascii_alphanumeric() || character == '_' => {
                    let mut word = character.to_string();
                    while let Some((_, next)) =
                        characters.next_if(|(_, next)| next.is_ascii_alphanumeric() || *next == '_')
                    {
                        word.push(next);
                    }
                    TokenKind::Word(word)
                }
                other => {
                    return Err(CompileError {
                        position,
                        kind: ErrorKind::UnexpectedCharacter(other),
                    })
                }
            };
            tokens.push(Token { kind, position });
        }
    }
    tokens.push(Token {
        kind: TokenKind::End,
        position: end_position(text),
    });
    Ok(tokens)
}

/// The position just after the last character of `text`.
pub(super) fn end_position(text: &str) -> Position {
    match text.lines().enumerate().last() {
        Some((index, line)) if !text.ends_with('\n') => Position {
            line: index + 1,
            column: line.chars().count() + 1,
        },
        Some((index, _)) => Position {
            line: index + 2,
            column: 1,
        },
        None => Position { line: 1, column: 1 },
    }
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        // tokenize always ends the list with End, which is never consumed.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if token.kind != TokenKind::End {
            self.next += 1;
        }
        token
    }

    fn error(&self, expected: &str) -> CompileError {
        let token = self.peek();
        CompileError {
            position: token.position,
            kind: ErrorKind::Expected {
                expected: expected.to_string(),
                found: token.kind.describe(),
            },
        }
    }

    fn expect(&mut self, kind: &TokenKind, expected: &str) -> Result<(), CompileError> {
        if &self.peek().kind == kind {
            self.advance();
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// A name; `self` only when `allow_self`.
    fn name(&mut self, expected: &str, allow_self: bool) -> Result<Name, CompileError> {
        match &self.peek().kind {
            TokenKind::Word(word)
                if !KEYWORDS.contains(&word.as_str()) || (allow_self && word == "self") =>
            {
                let token = self.advance();
                match token.kind {
                    TokenKind::Word(text) => Ok(Name {
                        text,
                        position: token.position,
                    }),
                    _ => Err(self.error(expected)),
                }
            }
            _ => Err(self.error(expected)),
        }
    }

    /// A name or `{ name name ... }`.
    fn set(&mut self, expected: &str, allow_self: bool) -> Result<Vec<Name>, CompileError> {
        if self.peek().kind != TokenKind::OpenBrace {
            return Ok(vec![self.name(expected, allow_self)?]);
        }
        self.advance();
        let mut names = vec![self.name(expected, allow_self)?];
        while self.peek().kind != TokenKind::CloseBrace {
            names.push(self.name(&format!("{expected} or '}}'"), allow_self)?);
        }
        self.advance();
        Ok(names)
    }

    /// `, name, name ...` up to the `;`.
    fn attribute_list(&mut self) -> Result<Vec<Name>, CompileError> {
        let mut attributes = Vec::new();
        while self.peek().kind == TokenKind::Comma {
            self.advance();
            attributes.push(self.name("an attribute name", false)?);
        }
        Ok(attributes)
    }

    fn rule(&mut self, kind: RuleKind, position: Position) -> Result<Statement, CompileError> {
        let sources = self.set("a source type or attribute", true)?;
        let targets = self.set("a target type, attribute or 'self'", true)?;
        self.expect(&TokenKind::Colon, "':' before the class")?;
        let (classes, permissions) = if self.peek().kind == TokenKind::Star {
            if kind == RuleKind::Allow {
                return Err(CompileError {
                    position: self.peek().position,
                    kind: ErrorKind::AllClassesInAllow,
                });
            }
            self.advance();
            (Classes::All, None)
        } else {
            let classes = self.set("a class name", false)?;
            let permissions = if self.peek().kind == TokenKind::Star {
                self.advance();
                None
            } else {
                Some(self.set("a permission, '{' or '*'", false)?)
            };
            (Classes::Named(classes), permissions)
        };
        self.expect(&TokenKind::Semicolon, "';'")?;
        Ok(Statement::Rule {
            kind,
            position,
            sources,
            targets,
            classes,
            permissions,
        })
    }

    fn statement(&mut self) -> Result<Statement, CompileError> {
        let expected = "a statement (type, attribute, typeattribute, allow or neverallow)";
        let token = self.peek().clone();
        let TokenKind::Word(keyword) = &token.kind else {
            return Err(self.error(expected));
        };
        let statement = match keyword.as_str() {
            "type" => {
                self.advance();
                let name = self.name("a type name", false)?;
                let attributes = self.attribute_list()?;
                Statement::Type { name, attributes }
            }
            "attribute" => {
                self.advance();
                Statement::Attribute {
                    name: self.name("an attribute name", false)?,
                }
            }
            "typeattribute" => {
                self.advance();
                let type_name = self.name("a type name", false)?;
                let mut attributes = vec![self.name("an attribute name", false)?];
                attributes.extend(self.attribute_list()?);
                Statement::TypeAttribute {
                    type_name,
                    attributes,
                }
            }
            "allow" => {
                self.advance();
                return self.rule(RuleKind::Allow, token.position);
            }
            "neverallow" => {
                self.advance();
                return self.rule(RuleKind::Neverallow, token.position);
            }
            _ => return Err(self.error(expected)),
        };
        self.expect(&TokenKind::Semicolon, "';'")?;
        Ok(statement)
    }
}

/// Parses `text` into statements.
pub(super) fn parse(text: &str) -> Result<Vec<Statement>, CompileError> {
    let mut parser = Parser {
        tokens: tokenize(text)?,
        next: 0,
    };
    let mut statements = Vec::new();
    while parser.peek().kind != TokenKind::End {
        statements.push(parser.statement()?);
    }
    Ok(statements)
}
