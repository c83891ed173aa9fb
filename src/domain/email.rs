//! An account's email address.

use crate::domain::text::{is_invisible, is_space, mixes_scripts, trim_spaces};
use crate::validate::Errors;

/// An email address that passed its rules, held normalised (see [`Email::normalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Longest address, as sent.
    pub const MAX_CHARS: usize = 254;
    /// Longest local part (before the `@`), as RFC 5321 allows.
    pub const LOCAL_MAX_CHARS: usize = 64;

    /// The address, normalised, or `None` after recording why not under `email`.
    pub fn parse(errors: &mut Errors, raw: &str) -> Option<Email> {
        let trimmed = trim_spaces(raw);
        if raw.chars().count() > Self::MAX_CHARS || !is_plausible(trimmed) {
            errors.add("email", "must be a valid email address");
        } else if raw.chars().any(is_invisible) {
            errors.add(
                "email",
                "must not contain invisible or bidirectional-control characters",
            );
        } else if trimmed.split(['@', '.']).any(mixes_scripts) {
            errors.add(
                "email",
                "must not mix Latin, Greek, Cyrillic or Armenian letters within the local part or a domain label",
            );
        } else {
            return Some(Email(Self::normalize(raw)));
        }
        None
    }

    /// The one normalisation rule for emails, applied at registration, login and everywhere
    /// an email is compared: surrounding whitespace is trimmed and the whole address is
    /// lower-cased (Unicode lower case, local part included). Nothing else is rewritten: no
    /// Unicode normalisation, no removal of dots or `+tags`, so `a.b+x@example.com` and
    /// `ab@example.com` are different accounts. It returns a plain string, not an
    /// [`Email`], because lookups (login) apply it to addresses they must not validate:
    /// refusing one would tell a guesser which addresses could exist.
    pub fn normalize(raw: &str) -> String {
        trim_spaces(raw).to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// local@domain.tld: a local part of 1-[`Email::LOCAL_MAX_CHARS`] characters and at least
/// two non-empty domain labels, with no whitespace, control characters or extra `@`.
fn is_plausible(email: &str) -> bool {
    let forbidden = |c: char| is_space(c) || c.is_control() || c == '@';
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_len = local.chars().count();
    (1..=Email::LOCAL_MAX_CHARS).contains(&local_len)
        && !local.chars().any(forbidden)
        && !domain.chars().any(forbidden)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AppError, FieldError};

    fn parse(raw: &str) -> Result<Email, Vec<FieldError>> {
        let mut errors = Errors::default();
        let email = Email::parse(&mut errors, raw);
        match errors.finish_parsed(email) {
            Ok(email) => Ok(email),
            Err(AppError::Validation(errors)) => Err(errors),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn refusal(raw: &str) -> String {
        let errors = parse(raw).expect_err(raw);
        assert_eq!(errors.len(), 1, "{raw:?}");
        assert_eq!(errors[0].field, "email");
        errors[0].message.clone()
    }

    #[test]
    fn valid_addresses_are_held_normalised() {
        let email = parse(" Alice@Example.COM ").expect("valid");
        assert_eq!(email.as_str(), "alice@example.com");
        assert_eq!(email.as_ref(), "alice@example.com");
        assert_eq!(parse(email.as_str()), Ok(email.clone()));
        assert_eq!(email.into_inner(), "alice@example.com");
        for good in ["a@b.co", "x.y+z@sub.domain.org", "иван@пример.рф"] {
            assert_eq!(parse(good).map(Email::into_inner), Ok(good.to_string()));
        }
        let local = "l".repeat(Email::LOCAL_MAX_CHARS);
        assert!(parse(&format!("{local}@example.com")).is_ok());
    }

    #[test]
    fn each_rule_has_its_message() {
        for bad in [
            "",
            "plain",
            "a@b",
            "@b.co",
            "a@@b.co",
            "a b@c.de",
            "a@.b.co",
            "a@b..co",
            "a\u{7}@b.co",
        ] {
            assert_eq!(refusal(bad), "must be a valid email address", "{bad:?}");
        }
        let local = "l".repeat(Email::LOCAL_MAX_CHARS + 1);
        assert_eq!(
            refusal(&format!("{local}@example.com")),
            "must be a valid email address"
        );
        let long = format!("a@{}.com", "d".repeat(Email::MAX_CHARS));
        assert_eq!(refusal(&long), "must be a valid email address");
        assert_eq!(
            refusal("ad\u{200b}min@example.com"),
            "must not contain invisible or bidirectional-control characters"
        );
        // Cyrillic "а" inside a Latin domain label.
        assert_eq!(
            refusal("admin@p\u{0430}ypal.com"),
            "must not mix Latin, Greek, Cyrillic or Armenian letters within the local part or a domain label"
        );
    }

    #[test]
    fn normalisation_trims_and_lower_cases_only() {
        assert_eq!(Email::normalize("  Bob@EXAMPLE.org "), "bob@example.org");
        assert_eq!(Email::normalize("A.B+x@Ex.com"), "a.b+x@ex.com");
        // Lookups normalise what they could not validate.
        assert_eq!(Email::normalize(" not an email "), "not an email");
    }
}
