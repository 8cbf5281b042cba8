//! `sessions`: login sessions (only the token's hash is stored).

use crate::db::Conn;
use crate::model::{Session, SessionId, Timestamp, UserId};
use crate::store::support::require_row;
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(
    Sessions,
    Session,
    "sessions",
    "session",
    id = crate::model::SessionId
);

#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub user_id: Option<UserId>,
    /// Only unrevoked sessions.
    pub unrevoked_only: bool,
}

pub async fn insert(conn: &mut Conn<'_>, session: &Session) -> Result<()> {
    exec!(conn, |c| {
        sqlx::query(
        "INSERT INTO sessions (id, session_id, token_hash, user_id, ip_address, user_agent, expires_at,
            idle_timeout_secs, last_activity_at, revoked_at, revoke_reason, created_at, updated_at, deleted_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    )
    .bind(session.id)
    .bind(&session.session_id)
    .bind(&session.token_hash)
    .bind(session.user_id)
    .bind(&session.ip_address)
    .bind(&session.user_agent)
    .bind(session.expires_at)
    .bind(session.idle_timeout_secs)
    .bind(session.last_activity_at)
    .bind(session.revoked_at)
    .bind(&session.revoke_reason)
    .bind(session.created_at)
    .bind(session.updated_at)
    .bind(session.deleted_at)
    })?;
    Ok(())
}

/// Writes the mutable columns: activity, expiry, revocation.
pub async fn update(conn: &mut Conn<'_>, session: &Session) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE sessions SET expires_at = $2, idle_timeout_secs = $3, last_activity_at = $4, revoked_at = $5,
            revoke_reason = $6
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(session.id)
    .bind(session.expires_at)
    .bind(session.idle_timeout_secs)
    .bind(session.last_activity_at)
    .bind(session.revoked_at)
    .bind(&session.revoke_reason)
    })?;
    require_row(affected, "session", session.id)
}

pub async fn get_by_session_id(conn: &mut Conn<'_>, session_id: &str) -> Result<Session> {
    get_by::<Sessions>(conn, "session_id", session_id).await
}

pub async fn get_by_token_hash(conn: &mut Conn<'_>, token_hash: &str) -> Result<Session> {
    get_by::<Sessions>(conn, "token_hash", token_hash).await
}

pub async fn list_sessions(
    conn: &mut Conn<'_>,
    filter: &SessionFilter,
    page: &PageRequest,
) -> Result<Page<Session>> {
    let mut f = Filter::new().eq_opt("user_id", filter.user_id.map(id_value));
    if filter.unrevoked_only {
        f = f.clause("revoked_at IS NULL", Vec::new());
    }
    list::<Sessions>(conn, &f, page).await
}

/// Records activity on a live, unrevoked session.
pub async fn touch(conn: &mut Conn<'_>, id: SessionId, at: Timestamp) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE sessions SET last_activity_at = $2 WHERE id = $1 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(at)
    })?;
    require_row(affected, "session", id)
}

/// Revokes one session. NotFound when it is absent or already revoked.
pub async fn revoke(conn: &mut Conn<'_>, id: SessionId, reason: &str, at: Timestamp) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3
         WHERE id = $1 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(at)
    .bind(reason))?;
    require_row(affected, "session", id)
}

/// Revokes every open session of a user; returns how many.
pub async fn revoke_all_for_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
    reason: &str,
    at: Timestamp,
) -> Result<u64> {
    exec!(conn, |c| sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND deleted_at IS NULL"
    )
    .bind(user_id)
    .bind(at)
    .bind(reason))
    .map_err(Into::into)
}

/// Revokes every open session of a user but `keep` (the one that asked);
/// returns how many.
pub async fn revoke_others_for_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
    keep: Option<SessionId>,
    reason: &str,
    at: Timestamp,
) -> Result<u64> {
    exec!(conn, |c| sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3
         WHERE user_id = $1 AND revoked_at IS NULL AND deleted_at IS NULL
           AND ($4 IS NULL OR id <> $4)"
    )
    .bind(user_id)
    .bind(at)
    .bind(reason)
    .bind(keep))
    .map_err(Into::into)
}

/// Hard-deletes sessions that expired (absolute timeout) or were revoked;
/// returns how many. Idle expiry is checked at use, not here.
pub async fn purge_expired(conn: &mut Conn<'_>, now: Timestamp) -> Result<u64> {
    exec!(conn, |c| sqlx::query(
        "DELETE FROM sessions WHERE expires_at <= $1 OR revoked_at IS NOT NULL"
    )
    .bind(now))
    .map_err(Into::into)
}
