//! `users`.

use crate::db::Conn;
use crate::model::{User, UserId, UserStatus};
use crate::store::{Filter, Page, PageRequest, Value, get_by, list, now};
use crate::{Result, exec, on_conn, table};

table!(Users, User, "users", "user");

/// What a user listing may filter on.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub status: Option<UserStatus>,
    /// Case-insensitive substring of username or email.
    pub search: Option<String>,
    /// Only members of these organizations (none = no restriction).
    pub organization_ids: Option<Vec<crate::model::OrganizationId>>,
}

pub async fn insert(conn: &mut Conn<'_>, user: &User) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO users (id, username, email, display_name, status, password_hash, mfa_enabled, mfa_secret,
            mfa_secret_nonce, mfa_encryption_key_id, mfa_last_used_step, failed_login_attempts, locked_until,
            last_login_at, password_changed_at, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    )
    .bind(user.id)
    .bind(&user.username)
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(user.status)
    .bind(&user.password_hash)
    .bind(user.mfa_enabled)
    .bind(&user.mfa_secret)
    .bind(&user.mfa_secret_nonce)
    .bind(user.mfa_encryption_key_id)
    .bind(user.mfa_last_used_step)
    .bind(user.failed_login_attempts)
    .bind(user.locked_until)
    .bind(user.last_login_at)
    .bind(user.password_changed_at)
    .bind(user.created_at)
    .bind(user.updated_at)
    .bind(user.deleted_at)
    })?;
    Ok(())
}

/// Writes every mutable column of `user` back.
pub async fn update(conn: &mut Conn<'_>, user: &User) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE users SET username = $2, email = $3, display_name = $4, status = $5, password_hash = $6,
            mfa_enabled = $7, mfa_secret = $8, mfa_secret_nonce = $9, mfa_encryption_key_id = $10,
            mfa_last_used_step = $11, failed_login_attempts = $12, locked_until = $13, last_login_at = $14,
            password_changed_at = $15
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(user.id)
    .bind(&user.username)
    .bind(&user.email)
    .bind(&user.display_name)
    .bind(user.status)
    .bind(&user.password_hash)
    .bind(user.mfa_enabled)
    .bind(&user.mfa_secret)
    .bind(&user.mfa_secret_nonce)
    .bind(user.mfa_encryption_key_id)
    .bind(user.mfa_last_used_step)
    .bind(user.failed_login_attempts)
    .bind(user.locked_until)
    .bind(user.last_login_at)
    .bind(user.password_changed_at)
    })?;
    if affected == 0 {
        return Err(crate::Error::not_found("user", user.id));
    }
    Ok(())
}

pub async fn get_by_username(conn: &mut Conn<'_>, username: &str) -> Result<User> {
    get_by::<Users>(conn, "username", username).await
}

pub async fn get_by_email(conn: &mut Conn<'_>, email: &str) -> Result<User> {
    get_by::<Users>(conn, "email", email.to_lowercase()).await
}

/// Looks a user up by username or email (login accepts either).
pub async fn find_by_login(conn: &mut Conn<'_>, login: &str) -> Result<Option<User>> {
    let login = login.trim();
    on_conn!(conn, |c| sqlx::query_as::<_, User>(
        "SELECT * FROM users WHERE (username = $1 OR email = $2) AND deleted_at IS NULL LIMIT 1"
    )
    .bind(login)
    .bind(login.to_lowercase())
    .fetch_optional(&mut *c)
    .await)
    .map_err(Into::into)
}

pub async fn list_users(
    conn: &mut Conn<'_>,
    filter: &UserFilter,
    page: &PageRequest,
) -> Result<Page<User>> {
    let dialect = conn.dialect();
    let mut f = Filter::new().eq_opt("status", filter.status.map(|s| s.as_str().to_string()));
    if let Some(search) = &filter.search {
        let pattern = format!("%{}%", search.replace('%', "\\%").replace('_', "\\_"));
        f = f.clause(
            format!(
                "username {0} ? ESCAPE '\\' OR email {0} ? ESCAPE '\\'",
                dialect.ilike()
            ),
            vec![Value::Text(pattern.clone()), Value::Text(pattern)],
        );
    }
    if let Some(orgs) = &filter.organization_ids {
        f = f.clause(
            member_of_clause(orgs.len()),
            orgs.iter().map(|o| crate::store::id_value(*o)).collect(),
        );
    }
    list::<Users>(conn, &f, page).await
}

/// `id IN (members of any of n organizations)` with n placeholders.
fn member_of_clause(n: usize) -> String {
    if n == 0 {
        return "1 = 0".to_string();
    }
    let marks = vec!["?"; n].join(", ");
    format!(
        "id IN (SELECT user_id FROM user_organizations WHERE deleted_at IS NULL AND organization_id IN ({marks}))"
    )
}

/// Records a failed login; returns the new consecutive failure count.
pub async fn record_failed_login(conn: &mut Conn<'_>, id: UserId) -> Result<i32> {
    let count = on_conn!(conn, |c| {
        sqlx::query_scalar::<_, i32>(
        "UPDATE users SET failed_login_attempts = failed_login_attempts + 1 WHERE id = $1 RETURNING failed_login_attempts"
    )
    .bind(id)
    .fetch_one(&mut *c)
    .await
    })?;
    Ok(count)
}

/// Records one use of TOTP step `step` unless it (or a later step) was
/// used already: the replay check and the write are one statement, so two
/// parallel uses of one code cannot both succeed. Returns whether it was
/// claimed.
pub async fn claim_totp_step(conn: &mut Conn<'_>, id: UserId, step: i64) -> Result<bool> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE users SET mfa_last_used_step = $2
         WHERE id = $1 AND (mfa_last_used_step IS NULL OR mfa_last_used_step < $2)"
    )
    .bind(id)
    .bind(step))?;
    Ok(affected == 1)
}

pub async fn set_status(
    conn: &mut Conn<'_>,
    id: UserId,
    status: UserStatus,
    locked_until: Option<crate::model::Timestamp>,
) -> Result<()> {
    exec!(conn, |c| sqlx::query(
        "UPDATE users SET status = $2, locked_until = $3 WHERE id = $1"
    )
    .bind(id)
    .bind(status)
    .bind(locked_until))?;
    Ok(())
}

pub async fn record_successful_login(conn: &mut Conn<'_>, id: UserId) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "UPDATE users SET failed_login_attempts = 0, locked_until = NULL, last_login_at = $2 WHERE id = $1"
    )
    .bind(id)
    .bind(now())
    })?;
    Ok(())
}

// ---------------------------------------------------------------- rotation

/// The next `limit` users (soft-deleted included) whose MFA secret is sealed
/// by `encryption_key_id`, after `after` in id order.
pub async fn mfa_sealed_by(
    conn: &mut Conn<'_>,
    encryption_key_id: crate::model::EncryptionKeyId,
    after: Option<UserId>,
    limit: u32,
) -> Result<Vec<User>> {
    let mut f = Filter::new().eq(
        "mfa_encryption_key_id",
        crate::store::id_value(encryption_key_id),
    );
    if let Some(after) = after {
        f = f.clause("id > ?", vec![crate::store::id_value(after)]);
    }
    let tail = format!(" ORDER BY id LIMIT {}", limit.max(1));
    crate::store::support::fetch_all(
        conn,
        "SELECT * FROM users WHERE mfa_secret IS NOT NULL",
        &f,
        &tail,
    )
    .await
}

/// Users (soft-deleted included) whose MFA secret is sealed by `encryption_key_id`.
pub async fn count_mfa_sealed_by(
    conn: &mut Conn<'_>,
    encryption_key_id: crate::model::EncryptionKeyId,
) -> Result<i64> {
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM users WHERE mfa_secret IS NOT NULL AND mfa_encryption_key_id = $1"
    )
    .bind(encryption_key_id)
    .fetch_one(&mut *c)
    .await)?)
}

/// Replaces a user's MFA sealing, only while it is still sealed by `old_key`
/// (an enrollment meanwhile wins). Returns whether the row changed.
pub async fn reseal_mfa_secret(
    conn: &mut Conn<'_>,
    id: UserId,
    old_key: crate::model::EncryptionKeyId,
    new_key: crate::model::EncryptionKeyId,
    secret: &crate::model::Opaque,
    nonce: &crate::model::Opaque,
) -> Result<bool> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE users SET mfa_encryption_key_id = $3, mfa_secret = $4, mfa_secret_nonce = $5
         WHERE id = $1 AND mfa_encryption_key_id = $2"
    )
    .bind(id)
    .bind(old_key)
    .bind(new_key)
    .bind(secret)
    .bind(nonce))?;
    Ok(affected == 1)
}
