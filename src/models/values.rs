//! Validated values: parse, don't validate. Each type's `parse` mirrors a named constraint of
//! the schema, so most bad input is refused before a round trip, with the same sentence the
//! database's constraint maps to (`ConstraintDef::meaning`).

use std::fmt;

use serde::Serialize;

use super::{
    characters::{self, is_invisible_or_control, is_white_space},
    schema,
};

/// A value refused before it reached the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field} {value:?}: {reason}")]
pub struct FieldError {
    pub(crate) field: &'static str,
    pub(crate) value: String,
    pub(crate) reason: String,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
        // Long values (a 1 MB prompt) are shown by their start.
        let shown: String = value.chars().take(80).collect();
        let value = if shown.len() < value.len() { format!("{shown}…") } else { shown };
        FieldError { field, value, reason: reason.into() }
    }

    fn from_constraint(field: &'static str, value: &str, constraint: &str) -> Self {
        let meaning = schema::constraint(constraint).map_or("is not valid", |c| c.meaning);
        Self::new(field, value, meaning)
    }
}

/// Text PostgreSQL can store: no NUL characters.
pub(crate) fn check_text(field: &'static str, value: &str) -> Result<(), FieldError> {
    if value.contains('\0') {
        Err(FieldError::new(
            field,
            value,
            "contains a NUL character (\\0), which PostgreSQL text cannot store; remove it",
        ))
    } else {
        Ok(())
    }
}

/// The rule of the `sites_*_one_line` constraints: no line break, tab or other control
/// character (a NUL is refused by `check_text` first, as PostgreSQL cannot store it).
pub fn check_one_line(field: &'static str, value: &str) -> Result<(), FieldError> {
    check_text(field, value)?;
    match value.chars().enumerate().find(|(_, c)| characters::is_line_break_or_control(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(FieldError::new(
            field,
            value,
            format!(
                "must be one line: character {} is {}; remove it (line breaks, tabs and other control characters belong in ai_prompt only)",
                at + 1,
                match c {
                    '\n' => "a line break (LF)".to_owned(),
                    '\r' => "a carriage return (CR)".to_owned(),
                    '\t' => "a tab".to_owned(),
                    other => format!("the control character U+{:04X}", other as u32),
                }
            ),
        )),
    }
}

/// The longest identifier the schema accepts.
pub(crate) const MAX_ID_CHARS: usize = 200;

/// The rule of `sites_site_id_format` and `users_user_id_format`: 1–200 characters, none of
/// them a control or format character, not starting or ending with white space (see
/// `characters`).
fn is_valid_identifier(value: &str) -> bool {
    let count = value.chars().count();
    (1..=MAX_ID_CHARS).contains(&count)
        && !value.chars().any(is_invisible_or_control)
        && !value.starts_with(is_white_space)
        && !value.ends_with(is_white_space)
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_value!(
    /// A `sites.site_id`: 1–200 characters, no surrounding white space, no control characters.
    SiteId
);
string_value!(
    /// A `users.user_id` (the Zitadel `sub`), with the same rules as [`SiteId`].
    UserId
);
string_value!(
    /// A host name in lower case: `shop.example.com`.
    Domain
);
string_value!(
    /// A BCP 47 language tag: `en`, `de`, `pt-BR`.
    LanguageTag
);
string_value!(
    /// An e-mail address, shaped like `name@example.com`.
    Email
);

impl SiteId {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if is_valid_identifier(value) {
            Ok(SiteId(value.to_owned()))
        } else {
            Err(FieldError::from_constraint("site_id", value, "sites_site_id_format"))
        }
    }
}

impl UserId {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if is_valid_identifier(value) {
            Ok(UserId(value.to_owned()))
        } else {
            Err(FieldError::from_constraint("user_id", value, "users_user_id_format"))
        }
    }
}

impl Domain {
    /// Accepts any case, surrounding white space and one trailing dot; stores the lower-case
    /// name, as the schema requires. International names are refused with their ASCII
    /// (punycode) form as the hint: that is the form browsers send and the schema stores.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let trimmed = value.trim();
        let normalized = trimmed.strip_suffix('.').unwrap_or(trimmed).to_ascii_lowercase();
        if is_host_name(&normalized) {
            return Ok(Domain(normalized));
        }
        let mut error = FieldError::from_constraint("domain", value, "sites_domain_hostname");
        if !trimmed.is_ascii()
            && let Ok(ascii) = idna::domain_to_ascii(trimmed)
            && is_host_name(ascii.trim_end_matches('.'))
        {
            error.reason.push_str(&format!(
                "; an international name is written in its ASCII (punycode) form: {}",
                ascii.trim_end_matches('.')
            ));
        }
        Err(error)
    }
}

/// The rule of `sites_domain_hostname` on a lower-case name: at most 253 characters, two or
/// more labels of 1–63 letters, digits and inner hyphens, the last starting with a letter.
fn is_host_name(name: &str) -> bool {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| label_ok(l))
        && labels.last().is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_lowercase()))
}

impl LanguageTag {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let mut parts = value.split('-');
        let primary = parts.next().unwrap_or("");
        let valid = (2..=3).contains(&primary.len())
            && primary.bytes().all(|b| b.is_ascii_lowercase())
            && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if valid {
            Ok(LanguageTag(value.to_owned()))
        } else {
            Err(FieldError::from_constraint("language", value, "sites_language_tag"))
        }
    }
}

/// The longest e-mail address the schema accepts.
pub(crate) const MAX_EMAIL_CHARS: usize = 320;

impl Email {
    /// The rule of `users_email_format`: `local@host`, where neither part holds `@`, white
    /// space or a control/format character, and the host is two or more dot-separated,
    /// non-empty labels (no leading, trailing or doubled dot).
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let bad = |c: char| c == '@' || is_white_space(c) || is_invisible_or_control(c);
        let valid = value.chars().count() <= MAX_EMAIL_CHARS
            && value.split_once('@').is_some_and(|(local, host)| {
                !local.is_empty()
                    && !local.chars().any(bad)
                    && host.split('.').count() >= 2
                    && host.split('.').all(|label| !label.is_empty() && !label.chars().any(bad))
            });
        if valid {
            Ok(Email(value.to_owned()))
        } else {
            Err(FieldError::from_constraint("email", value, "users_email_format"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(SiteId::parse("acme").is_ok());
        assert!(SiteId::parse("Kunde 42 / Bäckerei").is_ok());
        for bad in [
            "",
            " padded",
            "padded ",
            "tab\there",
            "\u{a0}no-break",
            "\u{200b}zero-width",
            "\u{202e}bidi",
            "esc\u{1b}[2J",
            &"x".repeat(201),
        ] {
            let err = SiteId::parse(bad).unwrap_err();
            assert!(err.reason.contains("site_id must be 1-200 characters"), "{err}");
        }
        assert!(UserId::parse("291840123456789012").is_ok());
    }

    #[test]
    fn domains_are_normalised_to_lower_case() {
        assert_eq!(Domain::parse("Shop.Example.COM.").unwrap().as_str(), "shop.example.com");
        assert_eq!(
            Domain::parse("xn--bckerei-5wa.example.de").unwrap().as_str(),
            "xn--bckerei-5wa.example.de"
        );
        for bad in
            ["localhost", "https://example.com", "exa mple.com", "-x.example.com", "1.2.3.4", "a..b.com", ""]
        {
            assert!(Domain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn international_domains_are_refused_with_their_punycode() {
        let error = Domain::parse("Bäckerei.example.de").unwrap_err();
        assert!(error.reason.contains("xn--bckerei-5wa.example.de"), "{error}");
        assert!(Domain::parse("a..b.com").unwrap_err().reason.contains("host name"));
        assert!(Domain::parse("example.com..").is_err(), "one trailing dot, not several");
    }

    #[test]
    fn language_tags() {
        for good in ["en", "de", "pt-BR", "zh-Hant-TW", "es-419"] {
            assert!(LanguageTag::parse(good).is_ok(), "{good}");
        }
        for bad in ["EN", "english", "pt_BR", "e", "en-", ""] {
            assert!(LanguageTag::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(Email::parse("ada@example.com").is_ok());
        assert!(Email::parse("ä.ö+tag@例え.jp").is_ok());
        for bad in [
            "not-an-email",
            "a b@example.com",
            "@example.com",
            "a@b",
            "a@.com",
            "a@b.",
            "a@b.c.",
            "a@b..c",
            "a\u{a0}@b.c",
            "a\u{200b}@b.c",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let err = FieldError::new("ai_prompt", &"p".repeat(1000), "too long");
        assert!(err.value.chars().count() <= 81, "{}", err.value);
    }
}
