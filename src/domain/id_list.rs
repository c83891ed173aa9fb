//! A set of ids as one text column stores it (`tasks.assignee_ids`, `tasks.label_ids`:
//! migration 000013): ids separated by spaces, sorted, no repeats; NULL when empty.
//! Removing one id in SQL (`REPLACE`) may leave extra spaces, which reading ignores.

use uuid::Uuid;

/// The ids in `stored`, in order; pieces that are not ids (none are ever written) are
/// skipped rather than failing a read.
pub fn parse(stored: Option<&str>) -> Vec<Uuid> {
    stored
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|piece| Uuid::parse_str(piece).ok())
        .collect()
}

/// `ids` as stored: sorted, without repeats, `None` when there are none.
pub fn join(ids: &[Uuid]) -> Option<String> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return None;
    }
    Some(
        ids.iter()
            .map(|id| id.hyphenated().to_string())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The `LIKE` pattern of rows whose list holds `id`: a UUID's text never occurs inside
/// another's, so no delimiter is needed.
pub fn containing(id: Uuid) -> String {
    format!("%{}%", id.hyphenated())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_sorts_and_drops_repeats_and_parse_reads_it_back() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let stored = join(&[a, b, a]).expect("not empty");
        assert_eq!(parse(Some(&stored)), vec![b, a]);
        assert_eq!(join(&[]), None);
        assert!(parse(None).is_empty());
    }

    #[test]
    fn parse_ignores_the_gaps_a_removal_leaves() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let stored = join(&[a, b])
            .expect("not empty")
            .replace(&a.to_string(), "");
        assert_eq!(parse(Some(&stored)), vec![b]);
        assert_eq!(parse(Some("  ")), Vec::<Uuid>::new());
    }
}
