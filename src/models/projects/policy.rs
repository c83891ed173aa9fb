//! Who may do what in a project: the one place that decides. Every path that touches a
//! project or its tasks asks [`authorize`], or (inside SQL, where the check must not cost a
//! round trip) compares the member's stored role with [`Action::least_role`], and then
//! asks [`authorize`] to explain a miss.
//!
//! Not a member: the project does not exist for them (404, no existence oracle). A member
//! whose role is too low: 403.

use crate::error::{AppError, Result};

pub use crate::entities::project_member::Role;

/// What a user asks to do to a project.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// See the project, its tasks, members, labels and comments.
    Read,
    /// Create, change, move or delete tasks; write comments.
    EditTasks,
    /// Rename, archive or delete the project; manage its members and labels; delete any
    /// comment.
    Administer,
}

impl Action {
    /// The least role that may do this.
    pub fn least_role(self) -> Role {
        match self {
            Action::Read => Role::Viewer,
            Action::EditTasks => Role::Editor,
            Action::Administer => Role::Admin,
        }
    }

    fn refusal(self) -> &'static str {
        match self {
            Action::Read => "You are not a member of this project.",
            Action::EditTasks => "Your role in this project does not allow changing its tasks.",
            Action::Administer => "Only the project's admins may do this.",
        }
    }
}

/// Why a write of an archived project's tasks is refused.
pub const ARCHIVED: &str =
    "This project is archived: unarchive it (PATCH archived: false) to change its tasks.";

impl Action {
    /// Whether an archived project refuses this (it stays readable, and its admins may
    /// still rename, unarchive or delete it and manage its members).
    pub fn refused_when_archived(self) -> bool {
        matches!(self, Action::EditTasks)
    }
}

/// [`authorize`], and then the project's state: an archived project's tasks cannot change
/// (409).
pub fn authorize_in(
    role: Option<Role>,
    archived: bool,
    action: Action,
    what: &'static str,
) -> Result<Role> {
    let role = authorize(role, action, what)?;
    if archived && action.refused_when_archived() {
        return Err(AppError::Conflict(ARCHIVED.into()));
    }
    Ok(role)
}

/// The decision: `role` is the caller's role in the project (`None`: not a member), `what`
/// names the thing asked for in the 404 ("Project", "Task"...). Returns the role on success.
pub fn authorize(role: Option<Role>, action: Action, what: &'static str) -> Result<Role> {
    match role {
        None => Err(AppError::NotFound(what)),
        Some(role) if role >= action.least_role() => Ok(role),
        Some(_) => Err(AppError::Forbidden(action.refusal())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    #[test]
    fn a_stranger_is_told_nothing_exists() {
        for action in [Action::Read, Action::EditTasks, Action::Administer] {
            assert!(matches!(
                authorize(None, action, "Task"),
                Err(AppError::NotFound("Task"))
            ));
        }
    }

    #[test]
    fn each_role_may_do_exactly_what_its_rank_allows() {
        let expected = [
            (Role::Viewer, [true, false, false]),
            (Role::Editor, [true, true, false]),
            (Role::Admin, [true, true, true]),
        ];
        for (role, allowed) in expected {
            for (action, allowed) in [Action::Read, Action::EditTasks, Action::Administer]
                .into_iter()
                .zip(allowed)
            {
                let decision = authorize(Some(role), action, "Project");
                assert_eq!(decision.is_ok(), allowed, "{role:?} {action:?}");
                if !allowed {
                    assert!(matches!(decision, Err(AppError::Forbidden(_))));
                }
            }
        }
    }

    #[test]
    fn an_archived_project_is_read_only_for_its_tasks_only() {
        assert!(authorize_in(Some(Role::Admin), true, Action::Read, "Task").is_ok());
        assert!(authorize_in(Some(Role::Admin), true, Action::Administer, "Project").is_ok());
        assert!(matches!(
            authorize_in(Some(Role::Admin), true, Action::EditTasks, "Task"),
            Err(AppError::Conflict(_))
        ));
        // Who may not see it still learns nothing, archived or not.
        assert!(matches!(
            authorize_in(None, true, Action::EditTasks, "Task"),
            Err(AppError::NotFound("Task"))
        ));
        assert!(authorize_in(Some(Role::Editor), false, Action::EditTasks, "Task").is_ok());
    }

    #[test]
    fn stored_roles_are_ordered_like_their_power() {
        let stored: Vec<i16> = Role::iter().map(Role::stored).collect();
        assert_eq!(stored, [1, 2, 3]);
    }
}
