//! The names and colours of projects and labels, and a comment's body.

use crate::domain::text::line;
use crate::validate::{self, Errors};

/// A project's or label's name: the rules of a task title (1-200 characters, not blank, no control or
/// invisible characters), held trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(errors: &mut Errors, raw: &str) -> Option<Name> {
        errors
            .parse(|errors| line(errors, "name", raw, Self::MAX_CHARS))
            .map(Name)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A comment: 1 to the description's most characters, not blank, no NUL (newlines and
/// tabs kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentBody(String);

impl CommentBody {
    pub fn parse(errors: &mut Errors, raw: String) -> Option<CommentBody> {
        if raw.trim().is_empty() {
            errors.add("body", "must not be blank");
            return None;
        }
        errors
            .parse(|errors| validate::free_text(errors, "body", Some(raw)).map(CommentBody))
            .flatten()
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A colour as `#rrggbb`, held lower-case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Color(String);

impl Color {
    pub fn parse(errors: &mut Errors, field: &str, raw: &str) -> Option<Color> {
        let hex = raw.strip_prefix('#').unwrap_or("");
        if hex.len() == 6 && hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            Some(Color(raw.to_ascii_lowercase()))
        } else {
            errors.add(field, "must be a colour written #rrggbb");
            None
        }
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_six_hex_digits_after_a_hash() {
        for good in ["#00aaFF", "#123456"] {
            let mut errors = Errors::default();
            assert!(Color::parse(&mut errors, "color", good).is_some(), "{good}");
        }
        for bad in ["00aaff", "#12345", "#1234567", "#gggggg", "", "#ééé"] {
            let mut errors = Errors::default();
            assert!(Color::parse(&mut errors, "color", bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn comments_are_not_blank_and_keep_their_lines() {
        let mut errors = Errors::default();
        let body = CommentBody::parse(&mut errors, "first\n\tsecond".into());
        assert_eq!(
            body.map(CommentBody::into_inner).as_deref(),
            Some("first\n\tsecond")
        );
        assert!(CommentBody::parse(&mut errors, " \n ".into()).is_none());
        assert!(CommentBody::parse(&mut errors, "nul\0".into()).is_none());
    }

    #[test]
    fn names_are_trimmed_and_never_blank() {
        let mut errors = Errors::default();
        let name = Name::parse(&mut errors, "  Launch ").map(Name::into_inner);
        assert_eq!(name.as_deref(), Some("Launch"));
        assert!(Name::parse(&mut errors, "   ").is_none());
    }
}
