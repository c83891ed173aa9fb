//! Input rules shared by handlers and the CLI, and [`Errors`], which collects every
//! problem rather than stopping at the first, so clients can fix a form in one round
//! trip. Names, emails, passwords and titles are parsed into the `domain` module's types.

use anyhow::anyhow;
use chrono::{DateTime, Utc};

use crate::error::{AppError, FieldError};

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

    /// Runs `check`, which records any problem it finds here, and returns its result only
    /// if it recorded none: how a parse turns "no complaint" into a value.
    pub fn parse<T>(&mut self, check: impl FnOnce(&mut Self) -> T) -> Option<T> {
        let before = self.0.len();
        let value = check(self);
        (self.0.len() == before).then_some(value)
    }

    /// [`Errors::finish`] for a value built only if every part parsed. A parse returns
    /// `None` only after recording why, so a `None` with nothing recorded is a bug in that
    /// parse, reported as an internal error rather than as an empty 422.
    pub fn finish_parsed<T>(self, value: Option<T>) -> Result<T, AppError> {
        match value {
            Some(value) => self.finish(value),
            None if self.0.is_empty() => Err(anyhow!("a parse failed without a reason").into()),
            None => Err(AppError::Validation(self.0)),
        }
    }
}

/// Free text keeps newlines and tabs, but never NUL (PostgreSQL text cannot store it).
pub fn description(errors: &mut Errors, raw: Option<String>) -> Option<String> {
    free_text(errors, "description", raw)
}

/// [`description`]'s rules for any free-text `field`.
pub fn free_text(errors: &mut Errors, field: &str, raw: Option<String>) -> Option<String> {
    if let Some(text) = &raw {
        if text.chars().count() > DESCRIPTION_MAX {
            errors.add(
                field,
                format!("must be at most {DESCRIPTION_MAX} characters"),
            );
        } else if text.contains('\0') {
            errors.add(field, "must not contain NUL characters");
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
    fn a_value_is_kept_only_if_its_parse_recorded_nothing() {
        let mut errors = Errors::default();
        assert_eq!(errors.parse(|_| 1), Some(1));
        let failed = errors.parse(|errors| {
            errors.add("field", "is wrong");
            2
        });
        assert_eq!(failed, None);
        // A later clean parse still yields its value; the earlier problem stays recorded.
        assert_eq!(errors.parse(|_| 3), Some(3));
        let Err(AppError::Validation(recorded)) = errors.finish_parsed(failed) else {
            panic!("expected the recorded problem");
        };
        assert_eq!(recorded, [FieldError::new("field", "is wrong")]);
        assert!(matches!(
            Errors::default().finish_parsed(None::<()>),
            Err(AppError::Internal(_))
        ));
        assert_eq!(Errors::default().finish_parsed(Some(4)).ok(), Some(4));
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
    fn page_bounds() {
        let mut errors = Errors::default();
        assert_eq!(page(&mut errors, None, None), (20, 0));
        page(&mut errors, Some(0), None);
        page(&mut errors, Some(101), Some(PAGE_OFFSET_MAX + 1));
        assert_eq!(errors.0.len(), 3);
    }
}
