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

/// Whitespace as the OpenAPI patterns (ECMAScript `\s`) see it: Unicode White_Space plus
/// the byte-order mark, so that validation and the published schema agree exactly.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

fn trim_spaces(raw: &str) -> &str {
    raw.trim_matches(is_space)
}

/// A one-line text such as a name or a title: at most `max` characters as sent, not blank,
/// no control characters. Returned trimmed.
fn line(errors: &mut Errors, field: &str, raw: &str, max: usize) -> String {
    let trimmed = trim_spaces(raw);
    if trimmed.is_empty() || raw.chars().count() > max {
        errors.add(field, format!("must be 1-{max} characters and not blank"));
    } else if raw.chars().any(char::is_control) {
        errors.add(field, "must not contain control characters");
    }
    trimmed.to_string()
}

pub fn name(errors: &mut Errors, raw: &str) -> String {
    line(errors, "name", raw, NAME_MAX)
}

/// Trimmed and lower-cased; the same normalisation applies at registration and login.
pub fn normalize_email(raw: &str) -> String {
    trim_spaces(raw).to_lowercase()
}

pub fn email(errors: &mut Errors, raw: &str) -> String {
    if raw.chars().count() > EMAIL_MAX || !is_plausible_email(trim_spaces(raw)) {
        errors.add("email", "must be a valid email address");
    }
    normalize_email(raw)
}

/// local@domain.tld: a local part of 1-64 characters and at least two non-empty domain
/// labels, with no whitespace, control characters or extra `@` anywhere.
fn is_plausible_email(email: &str) -> bool {
    let forbidden = |c: char| is_space(c) || c.is_control() || c == '@';
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_len = local.chars().count();
    (1..=64).contains(&local_len)
        && !local.chars().any(forbidden)
        && !domain.chars().any(forbidden)
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
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
    line(errors, "title", raw, TITLE_MAX)
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
        title(&mut errors, "\u{feff}");
        title(&mut errors, &"t".repeat(201));
        title(&mut errors, &format!(" {}", "t".repeat(200)));
        title(&mut errors, "tab\tinside");
        assert_eq!(errors.0.len(), 5);
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
