//! Validated values, parsed once at the edge: a value of these types has passed its rules,
//! so the models that hold them cannot be built from unchecked input. Each `parse` records
//! its problems in a [`crate::validate::Errors`] instead of stopping, so a request with
//! several bad fields gets them all in one 422.

mod email;
pub mod id_list;
mod password;
mod project;
mod text;
mod title;
mod user_name;

pub use email::Email;
pub use password::Password;
pub use project::{Color, CommentBody, Name};
pub use text::INVISIBLE_CLASS;
pub use title::Title;
pub use user_name::UserName;
