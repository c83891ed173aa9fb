//! An account's display name.

use crate::domain::text::{line, mixes_scripts};
use crate::validate::Errors;

/// A display name that passed its rules: those of a one-line text (1-[`UserName::MAX_CHARS`]
/// characters, not blank, no control or invisible characters) and no word mixing
/// confusable scripts; held trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub const MAX_CHARS: usize = 100;

    /// The name, or `None` after recording every reason why not under `name` in `errors`.
    pub fn parse(errors: &mut Errors, raw: &str) -> Option<UserName> {
        errors
            .parse(|errors| {
                let name = line(errors, "name", raw, Self::MAX_CHARS);
                if name
                    .split(|c: char| !c.is_alphanumeric())
                    .any(mixes_scripts)
                {
                    errors.add(
                        "name",
                        "must not mix Latin, Greek, Cyrillic or Armenian letters within one word",
                    );
                }
                name
            })
            .map(UserName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{AppError, FieldError};

    fn parse(raw: &str) -> Result<UserName, Vec<FieldError>> {
        let mut errors = Errors::default();
        let name = UserName::parse(&mut errors, raw);
        match errors.finish_parsed(name) {
            Ok(name) => Ok(name),
            Err(AppError::Validation(errors)) => Err(errors),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn messages(raw: &str) -> Vec<String> {
        let errors = parse(raw).expect_err(raw);
        assert!(errors.iter().all(|e| e.field == "name"), "{raw:?}");
        errors.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn valid_names_are_held_trimmed() {
        let name = parse("  Ada  ").expect("valid");
        assert_eq!(name.as_str(), "Ada");
        assert_eq!(name.as_ref(), "Ada");
        assert_eq!(parse(name.as_str()), Ok(name.clone()));
        assert_eq!(name.into_inner(), "Ada");
        // Separate words in different scripts, and single-script non-Latin, are fine.
        assert!(parse("Anna Каренина").is_ok());
        assert!(parse("Ἀριστοτέλης").is_ok());
    }

    #[test]
    fn each_rule_has_its_message() {
        assert_eq!(messages(" "), ["must be 1-100 characters and not blank"]);
        assert_eq!(
            messages(&"n".repeat(101)),
            ["must be 1-100 characters and not blank"]
        );
        assert_eq!(messages("a\u{7}b"), ["must not contain control characters"]);
        assert_eq!(
            messages("ad\u{200b}min"),
            ["must not contain invisible or bidirectional-control characters"]
        );
        let mixed = "must not mix Latin, Greek, Cyrillic or Armenian letters within one word";
        // Cyrillic "а" inside a Latin word.
        assert_eq!(messages("P\u{0430}ypal Support"), [mixed]);
        // Both rules at once are both reported.
        assert_eq!(
            messages("P\u{0430}ypal\u{7}"),
            ["must not contain control characters", mixed]
        );
    }
}
