//! A project's name and colour.

use crate::domain::text::line;
use crate::validate::Errors;

/// A project name: the rules of a task title (1-200 characters, not blank, no control or
/// invisible characters), held trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(String);

impl ProjectName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(errors: &mut Errors, raw: &str) -> Option<ProjectName> {
        errors
            .parse(|errors| line(errors, "name", raw, Self::MAX_CHARS))
            .map(ProjectName)
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
    fn names_are_trimmed_and_never_blank() {
        let mut errors = Errors::default();
        let name = ProjectName::parse(&mut errors, "  Launch ").map(ProjectName::into_inner);
        assert_eq!(name.as_deref(), Some("Launch"));
        assert!(ProjectName::parse(&mut errors, "   ").is_none());
    }
}
