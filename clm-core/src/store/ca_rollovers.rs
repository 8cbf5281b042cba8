//! `ca_rollovers`: one row per CA rollover with the stage it stands at, and
//! the reads over `certificates` the rollover decides by (which leaves to
//! reissue, what still depends on the old CA, a CA's successor and
//! retirement), kept here so the rollover's rules live in one file.

use crate::db::Conn;
use crate::model::{CaRollover, CaRolloverId, CertificateId, PolicyId, Timestamp};
use crate::store::support::{insert_one, require_row};
use crate::{Result, exec, on_conn, table};

table!(
    CaRollovers,
    CaRollover,
    "ca_rollovers",
    "CA rollover",
    id = crate::model::CaRolloverId;
    insert |r| {
        id: r.id,
        ca_certificate_id: r.ca_certificate_id,
        organization_id: r.organization_id,
        successor_certificate_id: r.successor_certificate_id,
        cross_new_by_old_id: r.cross_new_by_old_id,
        cross_old_by_new_id: r.cross_old_by_new_id,
        options: &r.options,
        status: r.status.as_str(),
        stage: r.stage.as_str(),
        trust_bundle_pem: r.trust_bundle_pem.as_deref(),
        leaves_seen: r.leaves_seen,
        leaves_reissued: r.leaves_reissued,
        leaves_pending_approval: r.leaves_pending_approval,
        leaves_failed: r.leaves_failed,
        last_leaf_id: r.last_leaf_id,
        blockers: r.blockers,
        error_message: r.error_message.as_deref(),
        initiated_by_user_id: r.initiated_by_user_id,
        started_at: r.started_at,
        completed_at: r.completed_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        deleted_at: r.deleted_at,
    }
);

/// Inserts a new rollover (the partial unique index refuses a second open
/// one for the same CA).
pub async fn insert(conn: &mut Conn<'_>, rollover: &CaRollover) -> Result<()> {
    insert_one::<CaRollovers>(conn, rollover).await
}

/// Writes the mutable columns: status, stage, bundle, progress, outcome.
pub async fn update(conn: &mut Conn<'_>, r: &CaRollover) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE ca_rollovers SET status = $2, stage = $3, trust_bundle_pem = $4, leaves_seen = $5,
            leaves_reissued = $6, leaves_pending_approval = $7, leaves_failed = $8, last_leaf_id = $9,
            blockers = $10, error_message = $11, completed_at = $12
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(r.id)
    .bind(r.status)
    .bind(r.stage)
    .bind(&r.trust_bundle_pem)
    .bind(r.leaves_seen)
    .bind(r.leaves_reissued)
    .bind(r.leaves_pending_approval)
    .bind(r.leaves_failed)
    .bind(r.last_leaf_id)
    .bind(r.blockers)
    .bind(&r.error_message)
    .bind(r.completed_at)
    })?;
    require_row(affected, "CA rollover", r.id)
}

/// The rollover of `ca` that is not completed (at most one), if any.
pub async fn get_open(conn: &mut Conn<'_>, ca: CertificateId) -> Result<Option<CaRollover>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, CaRollover>(
        "SELECT * FROM ca_rollovers
         WHERE ca_certificate_id = $1 AND status <> 'completed' AND deleted_at IS NULL"
    )
    .bind(ca)
    .fetch_optional(&mut *c)
    .await)?)
}

/// The newest rollover of `ca`, open or completed.
pub async fn latest(conn: &mut Conn<'_>, ca: CertificateId) -> Result<Option<CaRollover>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, CaRollover>(
        "SELECT * FROM ca_rollovers WHERE ca_certificate_id = $1 AND deleted_at IS NULL
         ORDER BY id DESC LIMIT 1"
    )
    .bind(ca)
    .fetch_optional(&mut *c)
    .await)?)
}

/// Locks a rollover's row for the rest of the transaction (PostgreSQL;
/// SQLite's write transaction already holds the file) and reads it.
pub async fn lock(conn: &mut Conn<'_>, id: CaRolloverId) -> Result<CaRollover> {
    let sql = format!(
        "SELECT * FROM ca_rollovers WHERE id = $1 AND deleted_at IS NULL{}",
        conn.dialect().for_update()
    );
    let row = on_conn!(conn, |c| sqlx::query_as::<_, CaRollover>(
        sqlx::AssertSqlSafe(sql.clone())
    )
    .bind(id)
    .fetch_optional(&mut *c)
    .await)?;
    row.ok_or_else(|| crate::Error::not_found("CA rollover", id))
}

// ------------------------------------------------------- reads over certificates

/// A leaf the rollover reissues: a certificate clm issued from `ca`, not a
/// CA, still valid at `at`, and not replaced by a live certificate.
const REISSUABLE: &str = "c.issuer_certificate_id = $1 AND c.deleted_at IS NULL AND c.is_ca = FALSE
    AND c.source = 'issued' AND c.status IN ('pending', 'active', 'expiring') AND c.not_after > $2
    AND NOT EXISTS (SELECT 1 FROM certificates n
                    WHERE n.replaces_certificate_id = c.id AND n.deleted_at IS NULL)";

/// A renewal request of `c` waits for approval.
const WAITING: &str = "EXISTS (SELECT 1 FROM certificate_requests q
    WHERE q.renewal_of_certificate_id = c.id AND q.status IN ('pending_approval', 'approved')
      AND q.deleted_at IS NULL)";

/// Leaves of `ca` to reissue after `after` (by id), up to `limit`; a leaf
/// whose renewal already waits for approval is listed too (the stage counts
/// it as waiting, not again).
pub async fn reissuable_leaves(
    conn: &mut Conn<'_>,
    ca: CertificateId,
    at: Timestamp,
    after: Option<CertificateId>,
    limit: u32,
) -> Result<Vec<(CertificateId, bool, bool)>> {
    let sql = match after {
        Some(_) => format!(
            "SELECT c.id, {WAITING} AS waiting,
                EXISTS (SELECT 1 FROM private_keys k WHERE k.certificate_id = c.id AND k.deleted_at IS NULL) AS holds_key
             FROM certificates c WHERE {REISSUABLE} AND c.id > $3 ORDER BY c.id LIMIT $4"
        ),
        None => format!(
            "SELECT c.id, {WAITING} AS waiting,
                EXISTS (SELECT 1 FROM private_keys k WHERE k.certificate_id = c.id AND k.deleted_at IS NULL) AS holds_key
             FROM certificates c WHERE {REISSUABLE} ORDER BY c.id LIMIT $3"
        ),
    };
    let limit = i64::from(limit);
    Ok(on_conn!(conn, |c| {
        let query =
            sqlx::query_as::<_, (CertificateId, bool, bool)>(sqlx::AssertSqlSafe(sql.clone()))
                .bind(ca)
                .bind(at);
        let query = match after {
            Some(after) => query.bind(after),
            None => query,
        };
        query.bind(limit).fetch_all(&mut *c).await
    })?)
}

/// Leaves of `ca` a rollover would reissue, by policy (None: issued
/// without one), leaving out those whose renewal already waits.
pub async fn reissuable_by_policy(
    conn: &mut Conn<'_>,
    ca: CertificateId,
    at: Timestamp,
) -> Result<Vec<(Option<PolicyId>, i64)>> {
    let sql = format!(
        "SELECT c.policy_id, COUNT(*) FROM certificates c
         WHERE {REISSUABLE} AND NOT {WAITING} GROUP BY c.policy_id"
    );
    Ok(on_conn!(conn, |c| sqlx::query_as::<
        _,
        (Option<PolicyId>, i64),
    >(sqlx::AssertSqlSafe(sql.clone()))
    .bind(ca)
    .bind(at)
    .fetch_all(&mut *c)
    .await)?)
}

/// Leaves of `ca` whose renewal waits for approval.
pub async fn waiting_leaves(conn: &mut Conn<'_>, ca: CertificateId, at: Timestamp) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM certificates c WHERE {REISSUABLE} AND {WAITING}");
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(
        sqlx::AssertSqlSafe(sql.clone())
    )
    .bind(ca)
    .bind(at)
    .fetch_one(&mut *c)
    .await)?)
}

/// What still depends on `ca` at `at`, as (leaves clm can reissue, other
/// dependants): valid certificates it signed that no live certificate
/// replaces, other than the cross certificates of a rollover and CAs that
/// have a successor of their own. The second count (subordinate CAs
/// without a successor, imported certificates) is what a rollover does not
/// move by itself.
pub async fn dependants(
    conn: &mut Conn<'_>,
    ca: CertificateId,
    at: Timestamp,
) -> Result<(i64, i64)> {
    let sql = "SELECT
            COALESCE(SUM(CASE WHEN c.is_ca = FALSE AND c.source = 'issued' THEN 1 ELSE 0 END), 0),
            COALESCE(SUM(CASE WHEN c.is_ca = FALSE AND c.source = 'issued' THEN 0 ELSE 1 END), 0)
         FROM certificates c
         WHERE c.issuer_certificate_id = $1 AND c.deleted_at IS NULL
           AND c.status IN ('pending', 'active', 'expiring') AND c.not_after > $2
           AND c.successor_certificate_id IS NULL
           AND NOT EXISTS (SELECT 1 FROM certificates n
                           WHERE n.replaces_certificate_id = c.id AND n.deleted_at IS NULL)
           AND NOT EXISTS (SELECT 1 FROM ca_rollovers r
                           WHERE r.cross_new_by_old_id = c.id OR r.cross_old_by_new_id = c.id)";
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, (i64, i64)>(sql)
        .bind(ca)
        .bind(at)
        .fetch_one(&mut *c)
        .await)?)
}

/// A CA's rollover state: its successor, when issuance has switched to
/// one, and when it was retired.
pub async fn ca_state(
    conn: &mut Conn<'_>,
    ca: CertificateId,
) -> Result<(Option<CertificateId>, Option<Timestamp>)> {
    let row = on_conn!(conn, |c| sqlx::query_as::<
        _,
        (Option<CertificateId>, Option<Timestamp>),
    >(
        "SELECT successor_certificate_id, retired_at FROM certificates WHERE id = $1"
    )
    .bind(ca)
    .fetch_optional(&mut *c)
    .await)?;
    Ok(row.unwrap_or((None, None)))
}

/// The CAs `ca` succeeds directly (their `successor_certificate_id` is `ca`).
pub async fn predecessors(conn: &mut Conn<'_>, ca: CertificateId) -> Result<Vec<CertificateId>> {
    Ok(on_conn!(conn, |c| sqlx::query_scalar::<_, CertificateId>(
        "SELECT id FROM certificates WHERE successor_certificate_id = $1 AND deleted_at IS NULL
         ORDER BY id"
    )
    .bind(ca)
    .fetch_all(&mut *c)
    .await)?)
}

/// Points the old CA at its successor: issuance switches.
pub async fn set_successor(
    conn: &mut Conn<'_>,
    ca: CertificateId,
    successor: CertificateId,
) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificates SET successor_certificate_id = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(ca)
    .bind(successor)
    })?;
    require_row(affected, "certificate authority", ca)
}

/// Retires a CA: it signs no more certificates (CRLs and OCSP go on).
pub async fn retire(conn: &mut Conn<'_>, ca: CertificateId, at: Timestamp) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE certificates SET retired_at = $2 WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(ca)
    .bind(at))?;
    require_row(affected, "certificate authority", ca)
}
