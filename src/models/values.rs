//! Validated values: parse, don't validate. Each type's `parse` mirrors a named constraint of
//! the schema, so most bad input is refused before a round trip, with the same sentence the
//! database's constraint maps to (`ConstraintDef::meaning`).

use std::fmt;

use serde::Serialize;

use super::schema;

/// A value refused before it reached the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{field} {value:?}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub value: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, value: &str, reason: impl Into<String>) -> Self {
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
pub fn check_text(field: &'static str, value: &str) -> Result<(), FieldError> {
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

/// The longest identifier the schema accepts.
pub const MAX_ID_CHARS: usize = 200;

fn is_valid_identifier(value: &str) -> bool {
    let count = value.chars().count();
    (1..=MAX_ID_CHARS).contains(&count)
        && !value.chars().any(char::is_control)
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
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
    /// Accepts any case and a trailing dot; stores the lower-case name, as the schema requires.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let normalized = value.trim().trim_end_matches('.').to_ascii_lowercase();
        let label_ok = |label: &str| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let labels: Vec<&str> = normalized.split('.').collect();
        let valid = normalized.len() <= 253
            && labels.len() >= 2
            && labels.iter().all(|l| label_ok(l))
            && labels.last().is_some_and(|tld| tld.starts_with(|c: char| c.is_ascii_lowercase()));
        if valid {
            Ok(Domain(normalized))
        } else {
            Err(FieldError::from_constraint("domain", value, "sites_domain_hostname"))
        }
    }
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

impl Email {
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let bad = |c: char| c == '@' || c.is_whitespace() || c.is_control();
        let valid = value.chars().count() <= 320
            && value.split_once('@').is_some_and(|(local, host)| {
                !local.is_empty()
                    && !local.chars().any(bad)
                    && host.split_once('.').is_some()
                    && !host.chars().any(bad)
                    && host
                        .rsplit_once('.')
                        .is_some_and(|(before, after)| !before.is_empty() && !after.is_empty())
                    && !host.starts_with('.')
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
        for bad in ["", " padded", "padded ", "tab\there", &"x".repeat(201)] {
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
        for bad in ["not-an-email", "a b@example.com", "@example.com", "a@b", "a@.com", "a@b."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let err = FieldError::new("ai_prompt", &"p".repeat(1000), "too long");
        assert!(err.value.chars().count() <= 81, "{}", err.value);
    }
}
