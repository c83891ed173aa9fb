//! Character rules shared by the one-line text types: what counts as blank, which
//! characters are invisible, and which words mix confusable scripts.

use crate::validate::Errors;

/// Whitespace as the OpenAPI patterns (ECMAScript `\s`) see it: Unicode White_Space plus
/// the byte-order mark, so that validation and the published schema agree exactly.
pub(super) fn is_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

pub(super) fn trim_spaces(raw: &str) -> &str {
    raw.trim_matches(is_space)
}

/// Characters that render as nothing (zero-width spaces and joiners, invisible fillers,
/// tag characters) or reorder the text around them (bidi controls, e.g. U+202E). In a
/// name, an email or a title they let two different strings look identical, or hide and
/// reverse text shown to an admin. Variation selectors stay allowed (emoji need them).
/// U+FEFF is not listed: like the schema's `\s`, the rules treat it as whitespace, so it
/// is trimmed at the edges and makes a value blank on its own.
/// Keep in step with `INVISIBLE_CLASS`, the same set in the published schema's patterns.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00ad}' // soft hyphen
        | '\u{034f}' // combining grapheme joiner
        | '\u{061c}' // Arabic letter mark (bidi)
        | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}' // Hangul fillers
        | '\u{17b4}' | '\u{17b5}' // Khmer inherent vowels
        | '\u{180b}'..='\u{180f}' // Mongolian free variation selectors and vowel separator
        | '\u{200b}'..='\u{200f}' // zero-width space, ZWNJ, ZWJ, LRM, RLM
        | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{206f}' // word joiner, invisible operators, bidi isolates
        | '\u{fff9}'..='\u{fffb}' // interlinear annotation
        | '\u{1d173}'..='\u{1d17a}' // musical formatting
        | '\u{e0000}'..='\u{e007f}' // tag characters
    )
}

/// [`is_invisible`] as an ECMAScript/Python regex character-class body, for the OpenAPI
/// `pattern`s in `requests.rs` (a test checks that both agree).
pub const INVISIBLE_CLASS: &str = r"\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb";

/// The scripts whose letters are confusable with each other (Latin `a`, Cyrillic `а`,
/// Greek `α`…). A word mixing two of them is a spoofing attempt far more often than a
/// real name, so names and email addresses refuse it; other scripts are not restricted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ConfusableScript {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
}

fn confusable_script(c: char) -> Option<ConfusableScript> {
    use ConfusableScript::*;
    if !c.is_alphabetic() {
        return None;
    }
    match c {
        'a'..='z' | 'A'..='Z' => Some(Latin),
        '\u{00c0}'..='\u{024f}' | '\u{1e00}'..='\u{1eff}' | '\u{2c60}'..='\u{2c7f}' => Some(Latin),
        '\u{a720}'..='\u{a7ff}' | '\u{ab30}'..='\u{ab6f}' | '\u{ff21}'..='\u{ff5a}' => Some(Latin),
        '\u{0370}'..='\u{03ff}' | '\u{1f00}'..='\u{1fff}' => Some(Greek),
        '\u{0400}'..='\u{052f}' | '\u{1c80}'..='\u{1c8f}' | '\u{2de0}'..='\u{2dff}' => {
            Some(Cyrillic)
        }
        '\u{a640}'..='\u{a69f}' => Some(Cyrillic),
        '\u{0530}'..='\u{058f}' | '\u{fb13}'..='\u{fb17}' => Some(Armenian),
        _ => None,
    }
}

/// Whether one word (no separators inside) mixes letters of two confusable scripts.
pub(super) fn mixes_scripts(word: &str) -> bool {
    let mut seen = None;
    for script in word.chars().filter_map(confusable_script) {
        match seen {
            None => seen = Some(script),
            Some(first) if first != script => return true,
            Some(_) => {}
        }
    }
    false
}

/// A one-line text such as a name or a title: at most `max` characters as sent, not blank,
/// no control or invisible characters. Returned trimmed; problems go to `errors`.
pub(super) fn line(errors: &mut Errors, field: &str, raw: &str, max: usize) -> String {
    let trimmed = trim_spaces(raw);
    if trimmed.is_empty() || raw.chars().count() > max {
        errors.add(field, format!("must be 1-{max} characters and not blank"));
    } else if raw.chars().any(char::is_control) {
        errors.add(field, "must not contain control characters");
    } else if raw.chars().any(is_invisible) {
        errors.add(
            field,
            "must not contain invisible or bidirectional-control characters",
        );
    }
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_pattern_class_matches_is_invisible() {
        // Every BMP character the class names is invisible, and vice versa.
        let mut listed = Vec::new();
        let class = INVISIBLE_CLASS.replace("-\\u", "-").replace("\\u", " ");
        for item in class.split_whitespace() {
            let (first, last) = item.split_once('-').map_or((item, item), |(a, b)| (a, b));
            let parse = |hex: &str| u32::from_str_radix(hex, 16).expect("hex");
            listed.push(parse(first)..=parse(last));
        }
        for code in 0..=0xffffu32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let in_class = listed.iter().any(|range| range.contains(&code));
            assert_eq!(in_class, is_invisible(c), "U+{code:04X}");
        }
    }

    #[test]
    fn scripts_mix_only_within_one_word() {
        assert!(mixes_scripts("P\u{0430}ypal"));
        assert!(!mixes_scripts("Каренина"));
        assert!(!mixes_scripts("Ἀριστοτέλης"));
        assert!(!mixes_scripts("café42"));
    }
}
