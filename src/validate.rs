//! Input rules shared by handlers and the CLI. Each function collects every problem
//! rather than stopping at the first, so clients can fix a form in one round trip.

use chrono::{DateTime, Utc};

use crate::error::{AppError, FieldError};

pub const NAME_MAX: usize = 100;
pub const EMAIL_MAX: usize = 254;
/// Longest local part (before the `@`), as RFC 5321 allows.
pub const EMAIL_LOCAL_MAX: usize = 64;
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

/// Characters that render as nothing (zero-width spaces and joiners, invisible fillers,
/// tag characters) or reorder the text around them (bidi controls, e.g. U+202E). In a
/// name, an email or a title they let two different strings look identical, or hide and
/// reverse text shown to an admin. Variation selectors stay allowed (emoji need them).
/// U+FEFF is not listed: like the schema's `\s`, the rules treat it as whitespace, so it
/// is trimmed at the edges and makes a value blank on its own.
/// Keep in step with `INVISIBLE_CLASS`, the same set in the published schema's patterns.
pub fn is_invisible(c: char) -> bool {
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
fn mixes_scripts(word: &str) -> bool {
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
/// no control or invisible characters. Returned trimmed.
fn line(errors: &mut Errors, field: &str, raw: &str, max: usize) -> String {
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

pub fn name(errors: &mut Errors, raw: &str) -> String {
    let name = line(errors, "name", raw, NAME_MAX);
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
}

/// The one normalisation rule for emails, applied at registration, login and everywhere
/// an email is compared: surrounding whitespace is trimmed and the whole address is
/// lower-cased (Unicode lower case, local part included). Nothing else is rewritten: no
/// Unicode normalisation, no removal of dots or `+tags`, so `a.b+x@example.com` and
/// `ab@example.com` are different accounts.
pub fn normalize_email(raw: &str) -> String {
    trim_spaces(raw).to_lowercase()
}

pub fn email(errors: &mut Errors, raw: &str) -> String {
    let trimmed = trim_spaces(raw);
    if raw.chars().count() > EMAIL_MAX || !is_plausible_email(trimmed) {
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
    }
    normalize_email(raw)
}

/// local@domain.tld: a local part of 1-[`EMAIL_LOCAL_MAX`] characters and at least two non-empty domain
/// labels, with no whitespace, control characters or extra `@` anywhere.
fn is_plausible_email(email: &str) -> bool {
    let forbidden = |c: char| is_space(c) || c.is_control() || c == '@';
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let local_len = local.chars().count();
    (1..=EMAIL_LOCAL_MAX).contains(&local_len)
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

/// First and last instants the API accepts and returns: RFC 3339 has four-digit years
/// only, and PostgreSQL and SQLite both keep microseconds.
pub const INSTANT_MIN_MICROS: i64 = -62_135_596_800_000_000; // 0001-01-01T00:00:00Z
pub const INSTANT_MAX_MICROS: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z
const INSTANT_RULE: &str = "must be an RFC 3339 date-time (e.g. 2030-01-31T17:00:00Z) whose UTC value lies between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z";

/// Whether `raw` has the exact shape of an RFC 3339 `date-time`:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `T`/`Z` in either case. Rejects what
/// lenient parsers let through: signed or 5+ digit years, a space for `T`, missing seconds.
fn is_rfc3339_shape(raw: &str) -> bool {
    let b = raw.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let head = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !head {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return false;
        }
        rest = &fraction[len..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Parses an RFC 3339 date-time into the one form every layer uses: UTC, microsecond
/// precision (further digits are truncated, as both databases would otherwise differ),
/// within years 0001-9999 *after* conversion to UTC (`9999-12-31T23:59:59-10:00` is
/// out). A leap second (`:60`) is folded into the first instant of the next minute, as
/// PostgreSQL does. The error is the message for the 422, naming the rule.
pub fn instant(raw: &str) -> Result<DateTime<Utc>, &'static str> {
    if !is_rfc3339_shape(raw) {
        return Err(INSTANT_RULE);
    }
    let parsed =
        DateTime::parse_from_rfc3339(&raw.to_ascii_uppercase()).map_err(|_| INSTANT_RULE)?;
    // `timestamp_subsec_micros` is >= 1_000_000 during a leap second: that is the fold.
    let micros = parsed
        .timestamp()
        .checked_mul(1_000_000)
        .and_then(|micros| micros.checked_add(i64::from(parsed.timestamp_subsec_micros())))
        .filter(|micros| (INSTANT_MIN_MICROS..=INSTANT_MAX_MICROS).contains(micros))
        .ok_or(INSTANT_RULE)?;
    DateTime::from_timestamp_micros(micros).ok_or(INSTANT_RULE)
}

/// The current time at the precision the API stores (microseconds), so that a value
/// written and read back is identical on PostgreSQL and SQLite.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
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
    fn instants_are_strict_rfc3339_within_years_1_to_9999() {
        let ok = |raw: &str| {
            instant(raw).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        };
        assert_eq!(
            ok("2030-01-31t17:00:00z").as_deref(),
            Ok("2030-01-31T17:00:00Z")
        );
        assert_eq!(
            ok("0001-01-01T00:00:00Z").as_deref(),
            Ok("0001-01-01T00:00:00Z")
        );
        assert_eq!(
            ok("9999-12-31T23:59:59.9999999Z").as_deref(),
            Ok("9999-12-31T23:59:59.999999Z")
        );
        assert_eq!(
            ok("2030-01-01T00:00:00.123456789+02:00").as_deref(),
            Ok("2029-12-31T22:00:00.123456Z")
        );
        assert_eq!(
            ok("2016-12-31T23:59:60Z").as_deref(),
            Ok("2017-01-01T00:00:00Z")
        );
        for bad in [
            "-4714-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "10000-01-01T00:00:00Z",
            "9999-12-31T23:59:59-10:00",
            "0001-01-01T00:30:00+01:00",
            "0000-06-01T00:00:00Z",
            "2030-01-01 00:00:00Z",
            "2030-01-01T00:00Z",
            "2030-01-01T00:00:00",
            "2030-01-01T00:00:00.Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01T00:00:00+0100",
            "2030-01-01T00:00:00Z ",
        ] {
            assert!(instant(bad).is_err(), "{bad}");
        }
        assert_eq!(now().timestamp_subsec_nanos() % 1000, 0);
    }

    #[test]
    fn invisible_and_confusable_characters_are_refused() {
        for bad in [
            "ad\u{200b}min",
            "evil\u{202e}gnp.exe",
            "\u{2066}x",
            "a\u{e0041}",
        ] {
            let mut errors = Errors::default();
            name(&mut errors, bad);
            title(&mut errors, bad);
            email(&mut errors, &format!("{bad}@example.com"));
            assert_eq!(errors.0.len(), 3, "{bad:?}");
        }
        // Cyrillic "а" inside a Latin word, in a name and in an email domain.
        let mut errors = Errors::default();
        name(&mut errors, "P\u{0430}ypal Support");
        email(&mut errors, "admin@p\u{0430}ypal.com");
        assert_eq!(errors.0.len(), 2);
        // Separate words in different scripts, and single-script non-Latin, are fine.
        let mut errors = Errors::default();
        name(&mut errors, "Anna Каренина");
        name(&mut errors, "Ἀριστοτέλης");
        email(&mut errors, "иван@пример.рф");
        title(&mut errors, "Café \u{2764}\u{fe0f} Ελλάδα");
        assert!(errors.0.is_empty());
    }

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
    fn page_bounds() {
        let mut errors = Errors::default();
        assert_eq!(page(&mut errors, None, None), (20, 0));
        page(&mut errors, Some(0), None);
        page(&mut errors, Some(101), Some(PAGE_OFFSET_MAX + 1));
        assert_eq!(errors.0.len(), 3);
    }
}
