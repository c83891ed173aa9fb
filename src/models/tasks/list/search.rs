//! `q`: a substring of the title or the description, compared case-insensitively by Rust's
//! Unicode lower case on both databases. The term is folded here and compared with the
//! folded copies written with every task (`fold_for_search`), so SQLite (whose `lower()`
//! and `LIKE` only know ASCII) and PostgreSQL match the same rows, with no function call
//! per row. Rows an older binary inserted before it knew the folded columns
//! (`title_search` NULL) fall back to the database's `lower()`.

use migration::{SEARCH_WORDS_SQL, fold_for_search};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{ColumnTrait, Condition};

use crate::entities::task;
use crate::validate::SEARCH_MAX;

// A word a term proves is at most the term's length; the index cuts longer runs of text
// into pieces of 255 characters (`SEARCH_WORDS_SQL`), so every such word is still whole,
// or the start of a piece, in the index.
const _: () = assert!(SEARCH_MAX <= 255);

/// The rows whose title or description holds `search`. With `word_index` (PostgreSQL,
/// `migration::SEARCH_WORDS_SQL`), a term of several words is first narrowed by the words
/// it proves the text holds ([`required_words`]); the substring is then checked on those
/// rows only.
pub(super) fn condition(search: &str, word_index: bool) -> Condition {
    let folded = fold_for_search(search);
    let substring = substring_condition(&folded);
    match required_words(&folded).filter(|_| word_index) {
        // `IS TRUE` (the same result in a WHERE) hides the substring test from the
        // planner's index matching: given both, it intersected the word index with the
        // trigram indexes, and reading the trigrams every title shares was the whole cost.
        Some(words) => Condition::all().add(Expr::cust_with_exprs(
            format!("{SEARCH_WORDS_SQL} @@ CAST($1 AS tsquery) AND ($2) IS TRUE"),
            [Expr::val(words), Expr::from(substring)],
        )),
        None => substring,
    }
}

/// Whether [`condition`] narrows `search` by the word index: a plan made for the term's
/// words then matters (see `postgres::PlannedPerValue`).
pub(super) fn narrowed_by_words(search: &str) -> bool {
    required_words(&fold_for_search(search)).is_some()
}

fn substring_condition(folded: &str) -> Condition {
    let pattern = format!("%{}%", escape_like(folded));
    let like = |expr: Expr| -> Expr { expr.like(LikeExpr::new(pattern.clone()).escape('\\')) };
    let lowered = |column: task::Column| like(Func::lower(Expr::col(column)).into());
    Condition::any()
        .add(like(Expr::col(task::Column::TitleSearch)))
        .add(like(Expr::col(task::Column::DescriptionSearch)))
        .add(
            Condition::all()
                .add(task::Column::TitleSearch.is_null())
                .add(
                    Condition::any()
                        .add(lowered(task::Column::Title))
                        .add(lowered(task::Column::Description)),
                ),
        )
}

/// `%` and `_` in a search are literal characters, not wildcards.
fn escape_like(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// A word, as `SEARCH_WORDS_SQL` splits text: a maximal run of these characters.
fn in_word(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_lowercase()
}

/// The words any text containing `folded` holds, as a `tsquery` (`'milk' & 'now':*`), or
/// `None` when it proves none. Split the term where the index splits text: a piece with a
/// separator on both sides is a whole word of the text; the last piece, with a separator
/// before it, starts a word (a prefix); the first piece may be the end of a longer word and
/// proves nothing. So "buy milk now" proves `milk` and `now…`, and a lone word proves
/// nothing (it may sit inside a word): such searches keep the trigram indexes.
pub(super) fn required_words(folded: &str) -> Option<String> {
    let pieces: Vec<&str> = folded.split(|c: char| !in_word(c)).collect();
    let last = pieces.len().checked_sub(1)?;
    let mut words: Vec<String> = Vec::new();
    for (index, piece) in pieces.iter().enumerate().skip(1) {
        let word = match (piece.is_empty(), index == last) {
            (true, _) => continue,
            (false, false) => format!("'{piece}'"),
            (false, true) => format!("'{piece}':*"),
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    (!words.is_empty()).then(|| words.join(" & "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn inner_words_are_whole_and_the_last_is_a_prefix() {
        assert_eq!(required_words("task 12345").as_deref(), Some("'12345':*"));
        assert_eq!(
            required_words("buy milk now").as_deref(),
            Some("'milk' & 'now':*")
        );
        assert_eq!(
            required_words("re: the  plan, v2").as_deref(),
            Some("'the' & 'plan' & 'v2':*")
        );
        assert_eq!(
            required_words("a-b-a-b").as_deref(),
            Some("'b' & 'a' & 'b':*")
        );
    }

    #[test]
    fn a_term_that_proves_no_whole_word_is_left_to_the_substring_test() {
        for term in ["milk", "milk ", "", "-", "…", "x\u{e9}"] {
            assert_eq!(required_words(term), None, "{term:?}");
        }
        // A separator before the first piece makes it a word start.
        assert_eq!(required_words(" milk").as_deref(), Some("'milk':*"));
        // Letters outside ASCII separate words, as the index's character class does.
        assert_eq!(required_words("café au").as_deref(), Some("'au':*"));
        assert_eq!(required_words("ünïcode").as_deref(), Some("'n' & 'code':*"));
    }

    /// Whatever a text holds around the term, every word the term proves is among the
    /// text's words, split the way the index splits it: the narrowing never drops a match.
    #[test]
    fn the_words_a_term_proves_are_in_every_text_that_contains_it() {
        let texts = ["xx", "ab9", "", "é", " ", "-", "9"];
        let terms = [
            "task 12345",
            "k 1",
            "a b c",
            " a-b ",
            "ask 9 é x",
            "1.5 kg",
            "x\u{0307}y z",
        ];
        for term in terms {
            let Some(words) = required_words(term) else {
                continue;
            };
            for before in texts {
                for after in texts {
                    let text = format!("{before}{term}{after}");
                    let held: Vec<&str> = text
                        .split(|c: char| !in_word(c))
                        .filter(|w| !w.is_empty())
                        .collect();
                    for word in words.split(" & ") {
                        let (word, prefix) = match word.strip_suffix(":*") {
                            Some(word) => (word.trim_matches('\''), true),
                            None => (word.trim_matches('\''), false),
                        };
                        assert!(
                            held.iter().any(|w| if prefix {
                                w.starts_with(word)
                            } else {
                                *w == word
                            }),
                            "{text:?} holds {term:?} but not the word {word:?}"
                        );
                    }
                }
            }
        }
    }
}
