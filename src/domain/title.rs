//! A task's title.

use crate::domain::text::line;
use crate::validate::Errors;

/// A task title that passed its rules: 1-[`Title::MAX_CHARS`] characters as sent, not
/// blank, no control or invisible characters; held trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    pub const MAX_CHARS: usize = 200;

    /// The title, or `None` after recording why not under `title` in `errors`.
    pub fn parse(errors: &mut Errors, raw: &str) -> Option<Title> {
        errors
            .parse(|errors| line(errors, "title", raw, Self::MAX_CHARS))
            .map(Title)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for Title {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AppError, FieldError};

    fn parse(raw: &str) -> Result<Title, Vec<FieldError>> {
        let mut errors = Errors::default();
        let title = Title::parse(&mut errors, raw);
        match errors.finish_parsed(title) {
            Ok(title) => Ok(title),
            Err(AppError::Validation(errors)) => Err(errors),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn refusal(raw: &str) -> String {
        let errors = parse(raw).expect_err(raw);
        assert_eq!(errors.len(), 1, "{raw:?}");
        assert_eq!(errors[0].field, "title");
        errors[0].message.clone()
    }

    #[test]
    fn valid_titles_are_held_trimmed() {
        let title = parse("  Write docs \u{feff}").expect("valid");
        assert_eq!(title.as_str(), "Write docs");
        assert_eq!(title.as_ref(), "Write docs");
        assert_eq!(title.clone().into_inner(), "Write docs");
        assert_eq!(parse(title.as_str()), Ok(title));
        assert!(parse("Café \u{2764}\u{fe0f} Ελλάδα").is_ok());
        assert!(parse(&"é".repeat(Title::MAX_CHARS)).is_ok());
    }

    #[test]
    fn each_rule_has_its_message() {
        let length = "must be 1-200 characters and not blank";
        assert_eq!(refusal(""), length);
        assert_eq!(refusal("   "), length);
        assert_eq!(refusal("\u{feff}"), length);
        assert_eq!(refusal(&"t".repeat(201)), length);
        // Counted as sent, before trimming.
        assert_eq!(refusal(&format!(" {}", "t".repeat(200))), length);
        assert_eq!(
            refusal("tab\tinside"),
            "must not contain control characters"
        );
        for hidden in [
            "ad\u{200b}min",
            "evil\u{202e}gnp.exe",
            "\u{2066}x",
            "a\u{e0041}",
        ] {
            assert_eq!(
                refusal(hidden),
                "must not contain invisible or bidirectional-control characters"
            );
        }
    }
}
