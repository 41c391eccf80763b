//! The password policy: at least 12 characters, a zxcvbn score of at least 3, and not
//! built from the person's own name or email.

use super::RuleViolation;
use crate::domain::Code;

const MIN_CHARS: usize = 12;
/// zxcvbn slows down sharply on very long input; nobody needs more than this.
const MAX_CHARS: usize = 256;

/// A password that passed the policy. Deliberately not `Debug`-printable.
pub struct NewPassword(String);

impl NewPassword {
    /// `personal` holds the person's name and email: a password may not contain them.
    pub fn parse(field: &'static str, raw: &str, personal: &[&str]) -> Result<Self, RuleViolation> {
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return Err(RuleViolation::field(
                Code::WeakPassword,
                field,
                format!("{field} must be at least {MIN_CHARS} characters long."),
            ));
        }
        if chars > MAX_CHARS {
            return Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("{field} must be at most {MAX_CHARS} characters long."),
            ));
        }
        let lowered = raw.to_lowercase();
        let mut hints: Vec<String> = Vec::new();
        for item in personal {
            for part in item
                .split(|c: char| !c.is_alphanumeric())
                .filter(|p| p.chars().count() >= 3)
            {
                let part = part.to_lowercase();
                if lowered.contains(&part) {
                    return Err(RuleViolation::field(
                        Code::WeakPassword,
                        field,
                        format!("{field} must not contain your name or email address."),
                    ));
                }
                hints.push(part);
            }
        }
        let hint_refs: Vec<&str> = hints.iter().map(String::as_str).collect();
        let entropy = zxcvbn::zxcvbn(raw, &hint_refs);
        if (entropy.score() as u8) < 3 {
            return Err(RuleViolation::field(
                Code::WeakPassword,
                field,
                format!("{field} is too easy to guess; use a longer phrase of unrelated words."),
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_password_is_accepted() {
        assert!(NewPassword::parse("password", "copper-lantern-orbit-93", &["Ann Lee"]).is_ok());
    }

    #[test]
    fn short_password_is_refused() {
        let err = NewPassword::parse("password", "Xk3!a9", &[]).err().unwrap();
        assert_eq!(err.code, Code::WeakPassword);
        assert_eq!(err.field, Some("password"));
    }

    #[test]
    fn guessable_password_is_refused() {
        let err = NewPassword::parse("password", "password1234", &[])
            .err()
            .unwrap();
        assert_eq!(err.code, Code::WeakPassword);
    }

    #[test]
    fn password_with_own_name_is_refused() {
        let err = NewPassword::parse(
            "password",
            "rosalind-quartz-harbor",
            &["Rosalind Okafor", "r.okafor@example.org"],
        )
        .err()
        .unwrap();
        assert!(err.message.contains("name"), "{}", err.message);
    }
}
