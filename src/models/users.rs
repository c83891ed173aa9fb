//! Accounts: registration (first user becomes admin, race-free), credential checks and
//! the admin rules (the last active admin can be neither demoted, deactivated nor deleted).

use chrono::Utc;
use sea_orm::sea_query::{Alias, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

use crate::auth::cache::AuthState;
use crate::auth::password::PasswordHasher;
use crate::domain::{Email, Password, UserName};
use crate::entities::user::{self, Role};
use crate::error::{AppError, Result, conflict_on_unique};
use crate::models::{projects, sessions, txn};
use crate::requests::RegisterRequest;
use crate::validate::Errors;

const DUPLICATE_EMAIL: &str = "An account with this email already exists.";
const LAST_ADMIN: &str = "This is the last active administrator; promote another user first.";
pub const WRONG_PASSWORD: &str = "The current password is incorrect.";

/// A registration that passed validation.
#[derive(Debug)]
pub struct NewUser {
    pub name: UserName,
    pub email: Email,
    pub password: Password,
}

impl TryFrom<RegisterRequest> for NewUser {
    type Error = AppError;

    fn try_from(req: RegisterRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let name = UserName::parse(&mut errors, &req.name);
        let email = Email::parse(&mut errors, &req.email);
        let password = Password::parse(&mut errors, "password", req.password);
        let new = match (name, email, password) {
            (Some(name), Some(email), Some(password)) => Some(NewUser {
                name,
                email,
                password,
            }),
            _ => None,
        };
        errors.finish_parsed(new)
    }
}

/// What the auth guard needs to know about the account (see `auth::cache`).
pub async fn auth_state<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<AuthState>> {
    let row = user::Entity::find_by_id(id)
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Role,
            user::Column::Active,
            user::Column::TokenVersion,
        ])
        .into_tuple::<(Uuid, Role, bool, i32)>()
        .one(conn)
        .await?;
    Ok(row.map(|(id, role, active, token_version)| AuthState {
        id,
        role,
        active,
        token_version,
    }))
}

/// The login email, normalised but not validated (see [`Email::normalize`]). Longer than
/// any valid address is refused before it costs a lookup, a hash or a limiter key.
pub fn login_email(raw: &str) -> Result<String> {
    if raw.chars().count() > Email::MAX_CHARS {
        return Err(AppError::validation(
            "email",
            format!("must be at most {} characters", Email::MAX_CHARS),
        ));
    }
    Ok(Email::normalize(raw))
}

/// Atomically claims a one-time event. Exactly one caller ever gets `true`, even across
/// replicas, because the claim is a primary-key insert; a rolled-back transaction
/// releases it.
async fn claim<C: ConnectionTrait>(conn: &C, name: &str) -> Result<bool> {
    let insert = Query::insert()
        .into_table(Alias::new("bootstrap_claims"))
        .columns([Alias::new("name"), Alias::new("claimed_at")])
        .values_panic([name.into(), Utc::now().into()])
        .on_conflict(
            OnConflict::column(Alias::new("name"))
                .do_nothing()
                .to_owned(),
        )
        .to_owned();
    let result = conn.execute(&insert).await?;
    Ok(result.rows_affected() == 1)
}

/// Creates the account; the first one ever registered becomes the admin.
pub async fn register(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    new: NewUser,
) -> Result<user::Model> {
    let password_hash = hasher.hash(&new.password).await?;
    let txn = db.begin().await?;
    let user = register_hashed(&txn, new, password_hash).await?;
    txn.commit().await?;
    Ok(user)
}

/// The writes of a registration whose password is already hashed, in the caller's
/// transaction: the first-admin claim is released if that transaction rolls back (an
/// idempotent registration adds its key to the same transaction, `models::idempotency`).
pub async fn register_hashed(
    txn: &DatabaseTransaction,
    new: NewUser,
    password_hash: String,
) -> Result<user::Model> {
    let role = if claim(txn, "first_admin").await? {
        Role::Admin
    } else {
        Role::User
    };
    insert(txn, new.name, new.email, password_hash, role).await
}

/// Bootstrap path for production (`taskapi create-admin`): an admin regardless of order.
pub async fn create_admin(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    new: NewUser,
) -> Result<user::Model> {
    let password_hash = hasher.hash(&new.password).await?;
    let txn = db.begin().await?;
    // Later self-registrations must not also become admin.
    claim(&txn, "first_admin").await?;
    let user = insert(&txn, new.name, new.email, password_hash, Role::Admin).await?;
    txn.commit().await?;
    Ok(user)
}

async fn insert<C: ConnectionTrait>(
    conn: &C,
    name: UserName,
    email: Email,
    password_hash: String,
    role: Role,
) -> Result<user::Model> {
    let now = crate::validate::now();
    let user = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(name.into_inner()),
        email: Set(email.into_inner()),
        password_hash: Set(password_hash),
        role: Set(role),
        active: Set(true),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .map_err(|err| conflict_on_unique(err, DUPLICATE_EMAIL))?;
    // Every account has its Inbox from its first moment (`models::projects`).
    projects::create_inbox(conn, &user).await?;
    Ok(user)
}

/// Checks credentials. Unknown email, wrong password and deactivated account are all
/// the same error, and all cost one argon2 verification.
pub async fn verify_credentials(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
) -> Result<user::Model> {
    let email = Email::normalize(email);
    // PostgreSQL text cannot hold NUL; such an email cannot exist, so skip the lookup.
    let found = if email.contains('\0') {
        None
    } else {
        user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(db)
            .await?
    };
    let Some(user) = found else {
        hasher.verify_dummy(password).await?;
        return Err(AppError::InvalidCredentials);
    };
    if hasher.verify(&user.password_hash, password).await? && user.active {
        Ok(user)
    } else {
        Err(AppError::InvalidCredentials)
    }
}

pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<user::Model> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound("User"))
}

pub async fn list(
    db: &DatabaseConnection,
    limit: u64,
    offset: u64,
) -> Result<(Vec<user::Model>, u64)> {
    let total = user::Entity::find().count(db).await?;
    let items = user::Entity::find()
        .order_by_asc(user::Column::CreatedAt)
        .order_by_asc(user::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

pub async fn update_name(db: &DatabaseConnection, id: Uuid, raw_name: &str) -> Result<user::Model> {
    let mut errors = Errors::default();
    let name = UserName::parse(&mut errors, raw_name);
    let name = errors.finish_parsed(name)?;
    let user = get(db, id).await?;
    let mut active: user::ActiveModel = user.into();
    active.name = Set(name.into_inner());
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}

/// A new password, parsed before the current one costs a hash.
pub fn new_password(raw: String) -> Result<Password> {
    let mut errors = Errors::default();
    let password = Password::parse(&mut errors, "new_password", raw);
    errors.finish_parsed(password)
}

/// Replaces the password after checking the current one; every session and access token
/// of the account stops working. A wrong current password is a 403.
pub async fn change_password(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    id: Uuid,
    current: &str,
    new: &Password,
) -> Result<()> {
    let user = get(db, id).await?;
    if !hasher.verify(&user.password_hash, current).await? {
        // Well-formed but wrong: a refusal of the action, not a malformed request.
        return Err(AppError::Forbidden(WRONG_PASSWORD));
    }
    let password_hash = hasher.hash(new).await?;
    let txn = db.begin().await?;
    let mut active: user::ActiveModel = user.into();
    active.password_hash = Set(password_hash);
    active.updated_at = Set(Utc::now());
    active.update(&txn).await?;
    sessions::revoke_user(&txn, id).await?;
    txn.commit().await?;
    Ok(())
}

/// The target account and whether another active admin remains, with the target's row
/// and every active admin's locked in one statement, in id order: two admin changes
/// racing on PostgreSQL (even through two replicas) then queue instead of deadlocking,
/// and two admins demoting each other cannot both succeed.
async fn lock_target_and_admins<C: ConnectionTrait>(
    conn: &C,
    target: Uuid,
) -> Result<(user::Model, bool)> {
    let rows = user::Entity::find()
        .filter(
            Condition::any().add(user::Column::Id.eq(target)).add(
                Condition::all()
                    .add(user::Column::Role.eq(Role::Admin))
                    .add(user::Column::Active.eq(true)),
            ),
        )
        .order_by_asc(user::Column::Id)
        .lock_exclusive()
        .all(conn)
        .await?;
    let others = rows
        .iter()
        .any(|row| row.id != target && keeps_admin_rights(row));
    let user = rows
        .into_iter()
        .find(|row| row.id == target)
        .ok_or(AppError::NotFound("User"))?;
    Ok((user, others))
}

fn keeps_admin_rights(user: &user::Model) -> bool {
    user.role == Role::Admin && user.active
}

/// Changes role and/or activation. `admin_lock` serialises these changes within the
/// process: SQLite has no row locks (and SQLite deployments are single-process), and its
/// write transaction starts IMMEDIATE; on PostgreSQL the row locks of
/// `lock_target_and_admins` hold across replicas.
/// Returns the user and whether their access was revoked (announce it after).
pub async fn admin_update(
    db: &DatabaseConnection,
    admin_lock: &tokio::sync::Mutex<()>,
    id: Uuid,
    role: Option<Role>,
    active: Option<bool>,
) -> Result<(user::Model, bool)> {
    let _guard = admin_lock.lock().await;
    let txn = txn::begin_write(db).await?;
    let (user, other_admins) = lock_target_and_admins(&txn, id).await?;
    let new_role = role.unwrap_or(user.role);
    let new_active = active.unwrap_or(user.active);
    let loses_admin = keeps_admin_rights(&user) && !(new_role == Role::Admin && new_active);
    if loses_admin && !other_admins {
        return Err(AppError::Conflict(LAST_ADMIN.into()));
    }
    let changed = new_role != user.role || new_active != user.active;
    let mut model: user::ActiveModel = user.into();
    model.role = Set(new_role);
    model.active = Set(new_active);
    model.updated_at = Set(Utc::now());
    model.update(&txn).await?;
    if changed {
        // Tokens carry the role: make clients fetch new ones that say the truth. A
        // deactivated account loses its sessions as well.
        if new_active {
            sessions::revoke_access_tokens(&txn, id).await?;
        } else {
            sessions::revoke_user(&txn, id).await?;
        }
    }
    txn.commit().await?;
    // Read back: the version bump happened in SQL, so the model in hand is stale.
    Ok((get(db, id).await?, changed))
}

pub async fn delete(
    db: &DatabaseConnection,
    admin_lock: &tokio::sync::Mutex<()>,
    id: Uuid,
) -> Result<()> {
    let _guard = admin_lock.lock().await;
    let txn = txn::begin_write(db).await?;
    let shared = projects::lock_feeds_before_deleting(&txn, id).await?;
    let (user, other_admins) = lock_target_and_admins(&txn, id).await?;
    if keeps_admin_rights(&user) && !other_admins {
        return Err(AppError::Conflict(LAST_ADMIN.into()));
    }
    // Shared projects the user alone administers pass to another member first; the Inbox
    // (with its tasks), memberships and refresh tokens go with the user through ON DELETE
    // CASCADE.
    projects::hand_over_before_deleting(&txn, id, &shared).await?;
    user::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn registration_collects_every_field_error() {
        let req = RegisterRequest {
            name: " ".into(),
            email: "nope".into(),
            password: "short".into(),
        };
        let Err(AppError::Validation(errors)) = NewUser::try_from(req) else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "email", "password"]);
    }

    #[test]
    fn registration_normalises_email_and_name() {
        let req = RegisterRequest {
            name: "  Ada  ".into(),
            email: " Ada@Example.COM".into(),
            password: "long enough".into(),
        };
        let user = NewUser::try_from(req).expect("valid");
        assert_eq!(user.name.as_str(), "Ada");
        assert_eq!(user.email.as_str(), "ada@example.com");
        assert_eq!(user.password.expose_secret(), "long enough");
    }
}
