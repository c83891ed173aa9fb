//! Tasks: validated input (`domain`), and the one store they are kept in (`store`) with its
//! two implementations, PostgreSQL (`postgres`) and portable (`portable`, SQLite).

pub mod domain;
pub mod list;
mod portable;
pub mod postgres;
mod store;

pub use domain::{TaskChanges, TaskInput, new_task};
pub use portable::{Moved, insert_with_event};
pub use postgres::PostgresTasks;
pub use store::{ChangeListener, TaskStore};

pub use list::{Page, TaskFilter};
