//! A new password, as chosen at registration or on a password change.

use secrecy::{ExposeSecret, SecretString};

use crate::validate::Errors;

/// A password that passed its rules, kept secret: `Debug` prints `[REDACTED]` and the
/// memory is zeroed on drop. Only hashing should need [`ExposeSecret::expose_secret`].
/// Passwords offered at login are not parsed: checking them must not reveal the rules.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    /// The password, or `None` after recording why not under `field` (`password` or
    /// `new_password`, as the request spells it). Takes the string by value so the secret
    /// is wrapped, and zeroed when dropped, whichever way this ends.
    pub fn parse(errors: &mut Errors, field: &str, raw: String) -> Option<Password> {
        let secret = SecretString::from(raw);
        let len = secret.expose_secret().chars().count();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&len) {
            Some(Password(secret))
        } else {
            errors.add(
                field,
                format!("must be {}-{} characters", Self::MIN_CHARS, Self::MAX_CHARS),
            );
            None
        }
    }
}

impl ExposeSecret<str> for Password {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AppError, FieldError};

    fn parse(field: &str, raw: &str) -> Result<Password, Vec<FieldError>> {
        let mut errors = Errors::default();
        let password = Password::parse(&mut errors, field, raw.to_string());
        match errors.finish_parsed(password) {
            Ok(password) => Ok(password),
            Err(AppError::Validation(errors)) => Err(errors),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn valid_passwords_are_kept_as_sent() {
        for good in [
            "long enough",
            "  spaces count  ",
            "p".repeat(Password::MAX_CHARS).as_str(),
        ] {
            let password = parse("password", good).expect(good);
            assert_eq!(password.expose_secret(), good);
            assert_eq!(password.clone().expose_secret(), good);
        }
        // Counted in characters: 8 characters, 16 bytes.
        assert!(parse("password", "éééééééé").is_ok());
    }

    #[test]
    fn lengths_outside_the_bounds_are_refused_under_the_given_field() {
        for bad in [
            "",
            "short",
            "ééééééé",
            "p".repeat(Password::MAX_CHARS + 1).as_str(),
        ] {
            for field in ["password", "new_password"] {
                let errors = parse(field, bad).expect_err(bad);
                assert_eq!(
                    errors,
                    [FieldError::new(field, "must be 8-128 characters")],
                    "{bad:?}"
                );
            }
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let password = parse("password", "hunter2-secret").expect("valid");
        let shown = format!("{password:?} {password:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
