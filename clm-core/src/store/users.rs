//! `users`.

use crate::db::Conn;
use crate::model::{User, UserId, UserStatus};
use crate::store::{Filter, Page, PageRequest, get_by, list};
use crate::{Result, exec, on_conn, table};

table!(Users, User, "users", "user", id = crate::model::UserId);

/// What a user listing may filter on.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserFilter {
    /// Only users in this status.
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

/// The user a login names: a login with an '@' is an e-mail address
/// (matched without case), anything else a username. Never both: with
/// `username = $1 OR email = $1` a user whose username is someone else's
/// e-mail address could be found for that person's login. A username that
/// holds an '@' logs in by its e-mail address instead.
pub async fn find_by_login(conn: &mut Conn<'_>, login: &str) -> Result<Option<User>> {
    let login = login.trim();
    let (sql, value) = if login.contains('@') {
        (
            "SELECT * FROM users WHERE email = $1 AND deleted_at IS NULL",
            login.to_lowercase(),
        )
    } else {
        (
            "SELECT * FROM users WHERE username = $1 AND deleted_at IS NULL",
            login.to_string(),
        )
    };
    on_conn!(conn, |c| sqlx::query_as::<_, User>(sql)
        .bind(&value)
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
        f = crate::store::support::contains_ci_any(f, dialect, &["username", "email"], search);
    }
    if let Some(orgs) = &filter.organization_ids {
        f = members_of(f, orgs);
    }
    list::<Users>(conn, &f, page).await
}

/// Restricts a filter over users (`id`) to members of any of `orgs`.
pub(crate) fn members_of(f: Filter, orgs: &[crate::model::OrganizationId]) -> Filter {
    f.clause(
        member_of_clause(orgs.len()),
        orgs.iter().map(|o| crate::store::id_value(*o)).collect(),
    )
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

/// Whether an account takes logins at `at`: active, or locked by a lockout
/// that has run out. Shared by the statements that decide a login.
const LOGIN_OPEN: &str = "deleted_at IS NULL
    AND (status = 'active' OR (status = 'locked' AND locked_until IS NOT NULL AND locked_until <= $2))";

/// A failed login counted by [`count_failed_login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountedFailure {
    /// Consecutive failures, this one included.
    pub failures: i32,
    /// This failure reached the threshold and locked the account.
    pub locked: bool,
}

/// Counts a failed login and locks the account when the count reaches
/// `max_failures`, in one statement, and only while the account takes
/// logins (see `LOGIN_OPEN`). None when it did not (locked, disabled or
/// deleted meanwhile): that failure is not counted, so parallel guesses
/// cannot count past the threshold.
pub async fn count_failed_login(
    conn: &mut Conn<'_>,
    id: UserId,
    at: crate::model::Timestamp,
    max_failures: i32,
    lock_until: crate::model::Timestamp,
) -> Result<Option<CountedFailure>> {
    let sql = format!(
        "UPDATE users SET failed_login_attempts = failed_login_attempts + 1,
            status = CASE WHEN failed_login_attempts + 1 >= $3 THEN 'locked' ELSE 'active' END,
            locked_until = CASE WHEN failed_login_attempts + 1 >= $3 THEN $4 ELSE NULL END
         WHERE id = $1 AND {LOGIN_OPEN}
         RETURNING failed_login_attempts, status"
    );
    let row = on_conn!(conn, |c| {
        sqlx::query_as::<_, (i32, UserStatus)>(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .bind(at)
            .bind(max_failures)
            .bind(lock_until)
            .fetch_optional(&mut *c)
            .await
    })?;
    Ok(row.map(|(failures, status)| CountedFailure {
        failures,
        locked: status == UserStatus::Locked,
    }))
}

/// What a successful login writes: only the columns the login owns.
#[derive(Debug, Clone, Copy)]
pub struct LoginWrite<'a> {
    pub id: UserId,
    pub at: crate::model::Timestamp,
    /// The password hash the password was verified against.
    pub verified_hash: &'a str,
    /// Whether MFA was on when the login was checked.
    pub mfa_enabled: bool,
    /// The TOTP step the login used; it must be newer than the last one.
    pub otp_step: Option<i64>,
    /// A new hash when the stored one's parameters are outdated.
    pub new_hash: Option<&'a str>,
}

/// Records a successful login (failures reset, lock lifted, last login,
/// TOTP step, rehash) in one conditional statement: only while the account
/// takes logins, still has the password hash and MFA state the login was
/// checked against, and the TOTP step is newer than the last one used. A
/// concurrent disable, lock, password change or use of the same code makes
/// it change nothing and return false.
pub async fn record_login(conn: &mut Conn<'_>, login: &LoginWrite<'_>) -> Result<bool> {
    let sql = format!(
        "UPDATE users SET failed_login_attempts = 0, status = 'active', locked_until = NULL,
            last_login_at = $2, mfa_last_used_step = COALESCE($5, mfa_last_used_step),
            password_hash = COALESCE($6, password_hash)
         WHERE id = $1 AND {LOGIN_OPEN} AND password_hash = $3 AND mfa_enabled = $4
           AND ($5 IS NULL OR mfa_last_used_step IS NULL OR mfa_last_used_step < $5)"
    );
    let affected = exec!(conn, |c| sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(login.id)
        .bind(login.at)
        .bind(login.verified_hash)
        .bind(login.mfa_enabled)
        .bind(login.otp_step)
        .bind(login.new_hash))?;
    Ok(affected == 1)
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
