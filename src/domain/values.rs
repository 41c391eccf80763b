//! Input values parsed once at the edge; holding one means it is valid.

use super::RuleViolation;
use crate::domain::Code;

fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// An email address, kept as given; `normalized()` is what uniqueness compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, RuleViolation> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("{field} is required."),
            ));
        }
        if trimmed.len() > 254 || !email_address::EmailAddress::is_valid(trimmed) {
            return Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("{field} is not a valid email address."),
            ));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Addresses are unique per practice ignoring case.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A person's display name: 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, RuleViolation> {
        bounded_text(field, raw, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A practice's display name: 1–200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeName(String);

impl PracticeName {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, RuleViolation> {
        bounded_text(field, raw, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn bounded_text(field: &'static str, raw: &str, max: usize) -> Result<String, RuleViolation> {
    bounded_chars(field, raw, 1, max)
}

/// Trimmed text of `min`–`max` characters without control characters.
pub(crate) fn bounded_chars(
    field: &'static str,
    raw: &str,
    min: usize,
    max: usize,
) -> Result<String, RuleViolation> {
    let trimmed = raw.trim();
    if trimmed.chars().count() < min.max(1) {
        return Err(RuleViolation::field(
            Code::InvalidField,
            field,
            format!("{field} is required."),
        ));
    }
    if trimmed.chars().count() > max {
        return Err(RuleViolation::field(
            Code::InvalidField,
            field,
            format!("{field} must be at most {max} characters."),
        ));
    }
    if has_control_chars(trimmed) {
        return Err(RuleViolation::field(
            Code::InvalidField,
            field,
            format!("{field} must not contain control characters."),
        ));
    }
    Ok(trimmed.to_string())
}

/// The practice's portal name in `/p/{slug}/`: 3–40 of `a-z`, `0-9` and inner `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeSlug(String);

impl PracticeSlug {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, RuleViolation> {
        let slug = raw.trim().to_ascii_lowercase();
        let valid = (3..=40).contains(&slug.len())
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !slug.starts_with('-')
            && !slug.ends_with('-');
        if valid {
            Ok(Self(slug))
        } else {
            Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("{field} must be 3 to 40 lowercase letters, digits or inner hyphens."),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mobile number in international form: `+` and 8–15 digits (spaces and dashes dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MobileNumber(String);

impl MobileNumber {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, RuleViolation> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if (8..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
            Ok(Self(compact))
        } else {
            Err(RuleViolation::field(
                Code::InvalidField,
                field,
                format!("{field} must be in international form, like +15551234567."),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_compared_ignoring_case() {
        let email = EmailAddress::parse("email", "  Ann.Lee@Example.org ").unwrap();
        assert_eq!(email.as_str(), "Ann.Lee@Example.org");
        assert_eq!(email.normalized(), "ann.lee@example.org");
    }

    #[test]
    fn bad_emails_name_the_field() {
        for raw in ["", "   ", "no-at-sign", "a@", "@b.org"] {
            let err = EmailAddress::parse("email", raw).unwrap_err();
            assert_eq!(err.field, Some("email"), "{raw}");
            assert_eq!(err.code, Code::InvalidField);
        }
    }

    #[test]
    fn names_are_bounded_and_printable() {
        assert!(PersonName::parse("name", "Dr. Ruth Ames").is_ok());
        assert!(PersonName::parse("name", "").is_err());
        assert!(PersonName::parse("name", &"x".repeat(201)).is_err());
        assert!(PersonName::parse("name", "a\u{0007}b").is_err());
    }

    #[test]
    fn slugs() {
        assert_eq!(
            PracticeSlug::parse("slug", "Oak-Clinic").unwrap().as_str(),
            "oak-clinic"
        );
        for bad in [
            "ab",
            "-oak",
            "oak-",
            "oak clinic",
            "oak/../x",
            &"a".repeat(41),
        ] {
            assert!(PracticeSlug::parse("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mobile_numbers() {
        assert_eq!(
            MobileNumber::parse("mobile", "+1 555-123-4567")
                .unwrap()
                .as_str(),
            "+15551234567"
        );
        assert!(MobileNumber::parse("mobile", "5551234567").is_err());
        assert!(MobileNumber::parse("mobile", "+12").is_err());
    }
}
