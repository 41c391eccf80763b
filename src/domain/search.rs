//! The search query language, parsed without I/O: words, "quoted phrases", -negations and
//! the operators from:, to:, subject:, has:attachment, in:<folder>, is:unread|read,
//! before:YYYY-MM-DD and after:YYYY-MM-DD.

use crate::domain::Code;
use chrono::NaiveDate;

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// Most words, phrases and operators in one query.
pub const MAX_CLAUSES: usize = 24;
/// Most words in one phrase.
pub const MAX_PHRASE_WORDS: usize = 12;

/// Text to look for: one word, or a phrase whose words must appear in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub text: String,
    pub phrase: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// In the subject, the body, the sender's name or an attachment's name.
    Any(Text),
    From(Text),
    To(Text),
    Subject(Text),
    HasAttachment,
    In(String),
    Unread(bool),
    /// Sent before this day began (UTC).
    Before(NaiveDate),
    /// Sent on or after this day (UTC).
    After(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub clause: Clause,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<Term>,
}

impl Query {
    /// Whether anything in the query ranks by text (otherwise newest first is the order).
    /// `from:me` and `to:me` name a person, not text.
    pub fn has_text(&self) -> bool {
        self.terms.iter().any(|t| {
            !t.negated
                && match &t.clause {
                    Clause::Any(_) | Clause::Subject(_) => true,
                    Clause::From(text) | Clause::To(text) => text.phrase || text.text != "me",
                    _ => false,
                }
        })
    }

    pub fn folder(&self) -> Option<&str> {
        self.terms.iter().find_map(|t| match &t.clause {
            Clause::In(f) if !t.negated => Some(f.as_str()),
            _ => None,
        })
    }

    pub fn unread(&self) -> Option<bool> {
        self.terms.iter().find_map(|t| match t.clause {
            Clause::Unread(u) => Some(u != t.negated),
            _ => None,
        })
    }
}

/// Why a query cannot be run; the message names the problem for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub code: Code,
    pub message: String,
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError {
        code: Code::InvalidQuery,
        message: message.into(),
    }
}

/// Reads one value: a "quoted phrase" or a bare word up to the next space.
fn read_value(chars: &[char], i: &mut usize, what: &str) -> Result<Text, QueryError> {
    if *i < chars.len() && chars[*i] == '"' {
        let start = *i + 1;
        let Some(len) = chars[start..].iter().position(|c| *c == '"') else {
            return Err(invalid(format!(
                "q: the quote opened at character {start} is never closed"
            )));
        };
        *i = start + len + 1;
        let text: String = chars[start..start + len].iter().collect();
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(invalid(format!(
                "q: {what}an empty phrase (\"\") finds nothing"
            )));
        }
        if text.split_whitespace().count() > MAX_PHRASE_WORDS {
            return Err(QueryError {
                code: Code::QueryTooComplex,
                message: format!("q: a phrase may have at most {MAX_PHRASE_WORDS} words"),
            });
        }
        Ok(Text { text, phrase: true })
    } else {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() {
            if chars[*i] == '"' {
                return Err(invalid(format!(
                    "q: a quote inside a word at character {}; quote whole phrases",
                    *i + 1
                )));
            }
            *i += 1;
        }
        let text: String = chars[start..*i].iter().collect();
        if text.is_empty() {
            return Err(invalid(format!("q: {what}needs a value")));
        }
        Ok(Text {
            text,
            phrase: false,
        })
    }
}

fn date(op: &str, value: &Text) -> Result<NaiveDate, QueryError> {
    NaiveDate::parse_from_str(&value.text, "%Y-%m-%d").map_err(|_| {
        invalid(format!(
            "q: {op}: takes a date as YYYY-MM-DD, not {:?}",
            value.text
        ))
    })
}

/// Parses a query. Operators are a lowercase word and a colon; anything else with a colon
/// (such as 10:30) is text.
pub fn parse(q: &str) -> Result<Query, QueryError> {
    check_characters(q)?;
    let chars: Vec<char> = q.chars().collect();
    let mut terms = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        terms.push(read_term(&chars, &mut i)?);
        if terms.len() > MAX_CLAUSES {
            return Err(QueryError {
                code: Code::QueryTooComplex,
                message: format!("q: a query may have at most {MAX_CLAUSES} words and operators"),
            });
        }
    }
    check_terms(&terms)?;
    Ok(Query { terms })
}

/// Refuses a query longer than [`MAX_QUERY_CHARS`] or holding control characters.
fn check_characters(q: &str) -> Result<(), QueryError> {
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError {
            code: Code::QueryTooLong,
            message: format!("q: a query may have at most {MAX_QUERY_CHARS} characters"),
        });
    }
    if q.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(invalid("q: control characters are not allowed"));
    }
    Ok(())
}

/// Reads one term starting at `chars[*i]` (not whitespace): an optional minus sign, then
/// an operator with its value or a bare word or phrase. Leaves `*i` just after it.
fn read_term(chars: &[char], i: &mut usize) -> Result<Term, QueryError> {
    let negated = chars[*i] == '-';
    if negated {
        *i += 1;
        if *i >= chars.len() || chars[*i].is_whitespace() {
            return Err(invalid(
                "q: a minus sign must be followed by what to leave out",
            ));
        }
    }
    // An operator: letters, then a colon.
    let op_len = chars[*i..]
        .iter()
        .take_while(|c| c.is_ascii_lowercase())
        .count();
    let is_op = op_len > 0 && chars.get(*i + op_len) == Some(&':');
    let clause = if is_op {
        let op: String = chars[*i..*i + op_len].iter().collect();
        *i += op_len + 1;
        let label = format!("{op}: ");
        let value = read_value(chars, i, &label)?;
        operator_clause(&op, value)?
    } else {
        Clause::Any(read_value(chars, i, "")?)
    };
    Ok(Term { negated, clause })
}

/// The clause operator `op` (without its colon) makes of `value`.
fn operator_clause(op: &str, value: Text) -> Result<Clause, QueryError> {
    Ok(match op {
        "from" => Clause::From(value),
        "to" => Clause::To(value),
        "subject" => Clause::Subject(value),
        "has" => match value.text.to_lowercase().as_str() {
            "attachment" | "attachments" => Clause::HasAttachment,
            other => {
                return Err(invalid(format!(
                    "q: has: knows only has:attachment, not {other:?}"
                )))
            }
        },
        "in" => Clause::In(value.text),
        "is" => match value.text.to_lowercase().as_str() {
            "unread" => Clause::Unread(true),
            "read" => Clause::Unread(false),
            other => {
                return Err(invalid(format!(
                    "q: is: knows is:unread and is:read, not {other:?}"
                )))
            }
        },
        "before" => Clause::Before(date("before", &value)?),
        "after" => Clause::After(date("after", &value)?),
        other => {
            return Err(invalid(format!(
                "q: unknown operator {other}: (known: from:, to:, subject:, \
                 has:attachment, in:, is:unread, before:, after:)"
            )))
        }
    })
}

/// Refuses a query with nothing to look for (no terms, or only negated ones) and one
/// with more than one `in:` or a negated `in:`.
fn check_terms(terms: &[Term]) -> Result<(), QueryError> {
    if terms.is_empty() {
        return Err(invalid("q: say what to search for"));
    }
    if terms.iter().all(|t| t.negated) {
        return Err(invalid(
            "q: a query needs something to look for, not only what to leave out",
        ));
    }
    if terms
        .iter()
        .filter(|t| matches!(t.clause, Clause::In(_)))
        .count()
        > 1
        || terms
            .iter()
            .any(|t| t.negated && matches!(t.clause, Clause::In(_)))
    {
        return Err(invalid("q: use in: once, without a minus sign"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(t: &str) -> Text {
        Text {
            text: t.into(),
            phrase: false,
        }
    }

    #[test]
    fn words_phrases_operators_and_negations() {
        let q = parse(r#"lab "blood test" from:Pat -flu subject:"Follow up" has:attachment in:inbox is:unread before:2026-01-02 after:2025-12-01 10:30"#).unwrap();
        let clauses: Vec<_> = q
            .terms
            .iter()
            .map(|t| (t.negated, t.clause.clone()))
            .collect();
        assert_eq!(
            clauses,
            vec![
                (false, Clause::Any(word("lab"))),
                (
                    false,
                    Clause::Any(Text {
                        text: "blood test".into(),
                        phrase: true
                    })
                ),
                (false, Clause::From(word("Pat"))),
                (true, Clause::Any(word("flu"))),
                (
                    false,
                    Clause::Subject(Text {
                        text: "Follow up".into(),
                        phrase: true
                    })
                ),
                (false, Clause::HasAttachment),
                (false, Clause::In("inbox".into())),
                (false, Clause::Unread(true)),
                (
                    false,
                    Clause::Before(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap())
                ),
                (
                    false,
                    Clause::After(NaiveDate::from_ymd_opt(2025, 12, 1).unwrap())
                ),
                (false, Clause::Any(word("10:30"))),
            ]
        );
        assert!(q.has_text());
        assert_eq!(q.folder(), Some("inbox"));
        assert_eq!(q.unread(), Some(true));
    }

    #[test]
    fn malformed_queries_say_what_is_wrong() {
        for (q, code) in [
            ("", "invalid_query"),
            ("   ", "invalid_query"),
            ("\"open quote", "invalid_query"),
            ("from:", "invalid_query"),
            ("from: pat", "invalid_query"),
            ("\"\"", "invalid_query"),
            ("has:pets", "invalid_query"),
            ("is:flagged", "invalid_query"),
            ("before:yesterday", "invalid_query"),
            ("after:2026-13-01", "invalid_query"),
            ("colour:red", "invalid_query"),
            ("-", "invalid_query"),
            ("-flu", "invalid_query"),
            ("in:inbox in:trash x", "invalid_query"),
            ("wo\"rd", "invalid_query"),
            ("a\u{0}b", "invalid_query"),
        ] {
            let err = parse(q).unwrap_err();
            assert_eq!(err.code.as_str(), code, "{q:?}: {}", err.message);
            assert!(err.message.starts_with("q: "), "{}", err.message);
        }
        assert_eq!(
            parse(&"a".repeat(501)).unwrap_err().code,
            Code::QueryTooLong
        );
        assert_eq!(
            parse(&"w ".repeat(30)).unwrap_err().code,
            Code::QueryTooComplex
        );
        assert_eq!(
            parse(&format!("\"{}\"", "w ".repeat(13))).unwrap_err().code,
            Code::QueryTooComplex
        );
    }

    #[test]
    fn filters_alone_have_no_text() {
        let q = parse("has:attachment is:unread").unwrap();
        assert!(!q.has_text());
        assert_eq!(q.unread(), Some(true));
        assert_eq!(parse("-is:unread x").unwrap().unread(), Some(false));
        // Oneself is a person, not text: such results come newest first.
        assert!(!parse("from:me").unwrap().has_text());
        assert!(!parse("to:me has:attachment").unwrap().has_text());
        assert!(parse("from:pat").unwrap().has_text());
        assert!(parse("from:\"me\"").unwrap().has_text());
    }
}
