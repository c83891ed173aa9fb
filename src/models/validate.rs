//! Input rules shared by handlers and the CLI. Each function collects every problem
//! rather than stopping at the first, so clients can fix a form in one round trip.

use crate::error::{AppError, FieldError};

pub const NAME_MAX: usize = 100;
pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;
pub const TITLE_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 10_000;
pub const PAGE_LIMIT_DEFAULT: u64 = 20;
pub const PAGE_LIMIT_MAX: u64 = 100;
/// Deep offsets cost a scan each; beyond this clients should narrow their filters.
pub const PAGE_OFFSET_MAX: u64 = 1_000_000;
pub const SEARCH_MAX: usize = 200;

#[derive(Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn finish<T>(self, value: T) -> Result<T, AppError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(AppError::Validation(self.0))
        }
    }
}

pub fn name(errors: &mut Errors, raw: &str) -> String {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > NAME_MAX {
        errors.add("name", format!("must be 1-{NAME_MAX} characters"));
    } else if trimmed.chars().any(char::is_control) {
        errors.add("name", "must not contain control characters");
    }
    trimmed.to_string()
}

/// Trimmed and lower-cased; the same normalisation applies at registration and login.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

pub fn email(errors: &mut Errors, raw: &str) -> String {
    let email = normalize_email(raw);
    if !is_plausible_email(&email) {
        errors.add("email", "must be a valid email address");
    }
    email
}

fn is_plausible_email(email: &str) -> bool {
    if email.len() > EMAIL_MAX || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

pub fn password(errors: &mut Errors, field: &str, raw: &str) {
    let len = raw.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        errors.add(
            field,
            format!("must be {PASSWORD_MIN}-{PASSWORD_MAX} characters"),
        );
    }
}

pub fn title(errors: &mut Errors, raw: &str) -> String {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len == 0 || len > TITLE_MAX {
        errors.add(
            "title",
            format!("must be 1-{TITLE_MAX} characters after trimming"),
        );
    } else if trimmed.chars().any(char::is_control) {
        errors.add("title", "must not contain control characters");
    }
    trimmed.to_string()
}

/// Free text keeps newlines and tabs, but never NUL (PostgreSQL text cannot store it).
pub fn description(errors: &mut Errors, raw: Option<String>) -> Option<String> {
    if let Some(text) = &raw {
        if text.chars().count() > DESCRIPTION_MAX {
            errors.add(
                "description",
                format!("must be at most {DESCRIPTION_MAX} characters"),
            );
        } else if text.contains('\0') {
            errors.add("description", "must not contain NUL characters");
        }
    }
    raw
}

/// A search term: bounded, and free of NUL.
pub fn search(errors: &mut Errors, raw: Option<String>) -> Option<String> {
    let term = raw
        .map(|q| q.trim().to_string())
        .filter(|q| !q.is_empty())?;
    if term.chars().count() > SEARCH_MAX {
        errors.add("q", format!("must be at most {SEARCH_MAX} characters"));
    } else if term.contains('\0') {
        errors.add("q", "must not contain NUL characters");
    }
    Some(term)
}

/// Returns (limit, offset) within bounds, or records why not.
pub fn page(errors: &mut Errors, limit: Option<u64>, offset: Option<u64>) -> (u64, u64) {
    let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=PAGE_LIMIT_MAX).contains(&limit) {
        errors.add("limit", format!("must be between 1 and {PAGE_LIMIT_MAX}"));
    }
    let offset = offset.unwrap_or(0);
    if offset > PAGE_OFFSET_MAX {
        errors.add("offset", format!("must be at most {PAGE_OFFSET_MAX}"));
    }
    (limit, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_rules() {
        for good in ["a@b.co", " Alice@Example.COM ", "x.y+z@sub.domain.org"] {
            let mut errors = Errors::default();
            email(&mut errors, good);
            assert!(errors.0.is_empty(), "{good}");
        }
        for bad in [
            "", "plain", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@.b.co", "a@b..co",
        ] {
            let mut errors = Errors::default();
            email(&mut errors, bad);
            assert_eq!(errors.0.len(), 1, "{bad}");
        }
        assert_eq!(normalize_email("  Bob@EXAMPLE.org "), "bob@example.org");
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        let mut errors = Errors::default();
        password(&mut errors, "password", "ééééééé"); // 7 chars, 14 bytes
        assert_eq!(errors.0.len(), 1);
        let mut errors = Errors::default();
        assert_eq!(title(&mut errors, "  hi  "), "hi");
        title(&mut errors, "   ");
        title(&mut errors, &"t".repeat(201));
        assert_eq!(errors.0.len(), 2);
    }

    #[test]
    fn page_bounds() {
        let mut errors = Errors::default();
        assert_eq!(page(&mut errors, None, None), (20, 0));
        page(&mut errors, Some(0), None);
        page(&mut errors, Some(101), Some(PAGE_OFFSET_MAX + 1));
        assert_eq!(errors.0.len(), 3);
    }
}
