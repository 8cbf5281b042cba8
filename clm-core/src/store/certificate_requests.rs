//! `certificate_requests`: CSRs and issuance requests.

use crate::db::Conn;
use crate::model::{CertificateId, CertificateRequest, OrganizationId, RequestStatus, UserId};
use crate::store::support::{column, in_ids_opt, in_texts, require_row, values_insert_sql};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(
    CertificateRequests,
    CertificateRequest,
    "certificate_requests",
    "certificate request"
);

#[derive(Debug, Clone, Default)]
pub struct CertificateRequestFilter {
    pub status: Option<Vec<RequestStatus>>,
    pub requested_by_user_id: Option<UserId>,
    pub owner_user_id: Option<UserId>,
    pub renewal_of_certificate_id: Option<CertificateId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
}

const INSERT_COLUMNS: &str = "id, request_id, csr_pem, common_name, subject_dn, subject_alternative_names,
    key_algorithm, key_size, certificate_kind, validity_days, status, issuer_certificate_id, certificate_id,
    renewal_of_certificate_id, reuse_key, requested_by_user_id, owner_user_id, organization_id, policy_id,
    workflow_instance_id, failure_reason, expires_at, created_at, updated_at, deleted_at";
const INSERT_COLUMN_COUNT: usize = 25;

/// Binds one request's [`INSERT_COLUMNS`] in order.
macro_rules! bind_request {
    ($query:expr, $r:expr) => {
        $query
            .bind($r.id)
            .bind(&$r.request_id)
            .bind(&$r.csr_pem)
            .bind(&$r.common_name)
            .bind(&$r.subject_dn)
            .bind(&$r.subject_alternative_names)
            .bind(&$r.key_algorithm)
            .bind($r.key_size)
            .bind($r.certificate_kind)
            .bind($r.validity_days)
            .bind($r.status)
            .bind($r.issuer_certificate_id)
            .bind($r.certificate_id)
            .bind($r.renewal_of_certificate_id)
            .bind($r.reuse_key)
            .bind($r.requested_by_user_id)
            .bind($r.owner_user_id)
            .bind($r.organization_id)
            .bind($r.policy_id)
            .bind($r.workflow_instance_id)
            .bind(&$r.failure_reason)
            .bind($r.expires_at)
            .bind($r.created_at)
            .bind($r.updated_at)
            .bind($r.deleted_at)
    };
}

pub async fn insert(conn: &mut Conn<'_>, request: &CertificateRequest) -> Result<()> {
    let sql = values_insert_sql(
        conn.dialect(),
        "certificate_requests",
        INSERT_COLUMNS,
        INSERT_COLUMN_COUNT,
        1,
    );
    exec!(conn, |c| bind_request!(
        sqlx::query(sqlx::AssertSqlSafe(sql)),
        request
    ))?;
    Ok(())
}

/// Inserts many requests (a group commit of issuances): on PostgreSQL one
/// statement of column arrays, on SQLite multi-row INSERTs under its bind
/// limit. Run it in a transaction for all-or-nothing.
pub async fn insert_many(conn: &mut Conn<'_>, requests: &[CertificateRequest]) -> Result<u64> {
    crate::store::support::insert_rows(
        conn,
        "certificate_requests",
        INSERT_COLUMNS,
        INSERT_COLUMN_COUNT,
        requests,
        |query, rows| {
            query
                .bind(column(rows, |r| r.id))
                .bind(column(rows, |r| r.request_id.as_str()))
                .bind(column(rows, |r| r.csr_pem.as_deref()))
                .bind(column(rows, |r| r.common_name.as_deref()))
                .bind(column(rows, |r| r.subject_dn.as_str()))
                .bind(column(rows, |r| &r.subject_alternative_names))
                .bind(column(rows, |r| r.key_algorithm.as_str()))
                .bind(column(rows, |r| r.key_size))
                .bind(column(rows, |r| r.certificate_kind.as_str()))
                .bind(column(rows, |r| r.validity_days))
                .bind(column(rows, |r| r.status.as_str()))
                .bind(column(rows, |r| r.issuer_certificate_id))
                .bind(column(rows, |r| r.certificate_id))
                .bind(column(rows, |r| r.renewal_of_certificate_id))
                .bind(column(rows, |r| r.reuse_key))
                .bind(column(rows, |r| r.requested_by_user_id))
                .bind(column(rows, |r| r.owner_user_id))
                .bind(column(rows, |r| r.organization_id))
                .bind(column(rows, |r| r.policy_id))
                .bind(column(rows, |r| r.workflow_instance_id))
                .bind(column(rows, |r| r.failure_reason.as_deref()))
                .bind(column(rows, |r| r.expires_at))
                .bind(column(rows, |r| r.created_at))
                .bind(column(rows, |r| r.updated_at))
                .bind(column(rows, |r| r.deleted_at))
        },
        |query, row| bind_request!(query, row),
    )
    .await
}

/// Writes the mutable columns: status and outcome, issuer, workflow, expiry.
/// The requested subject, key and validity never change.
pub async fn update(conn: &mut Conn<'_>, request: &CertificateRequest) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificate_requests SET status = $2, issuer_certificate_id = $3, certificate_id = $4,
            workflow_instance_id = $5, failure_reason = $6, expires_at = $7, owner_user_id = $8,
            organization_id = $9, policy_id = $10
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(request.id)
    .bind(request.status)
    .bind(request.issuer_certificate_id)
    .bind(request.certificate_id)
    .bind(request.workflow_instance_id)
    .bind(&request.failure_reason)
    .bind(request.expires_at)
    .bind(request.owner_user_id)
    .bind(request.organization_id)
    .bind(request.policy_id)
    })?;
    require_row(affected, "certificate request", request.id)
}

pub async fn get_by_request_id(
    conn: &mut Conn<'_>,
    request_id: &str,
) -> Result<CertificateRequest> {
    get_by::<CertificateRequests>(conn, "request_id", request_id).await
}

pub async fn list_certificate_requests(
    conn: &mut Conn<'_>,
    filter: &CertificateRequestFilter,
    page: &PageRequest,
) -> Result<Page<CertificateRequest>> {
    let mut f = Filter::new()
        .eq_opt(
            "requested_by_user_id",
            filter.requested_by_user_id.map(id_value),
        )
        .eq_opt("owner_user_id", filter.owner_user_id.map(id_value))
        .eq_opt(
            "renewal_of_certificate_id",
            filter.renewal_of_certificate_id.map(id_value),
        );
    if let Some(status) = &filter.status {
        f = in_texts(f, "status", status);
    }
    f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    list::<CertificateRequests>(conn, &f, page).await
}

/// Marks a waiting request issued with its certificate, only if it still
/// waits: of two racing issuances exactly one passes (the other sees 0 rows).
pub async fn mark_issued_if_waiting(
    conn: &mut Conn<'_>,
    request: &CertificateRequest,
) -> Result<bool> {
    let certificate_id = request
        .certificate_id
        .ok_or_else(|| crate::Error::Internal("issued request without certificate".into()))?;
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE certificate_requests SET status = 'issued', certificate_id = $2, failure_reason = NULL
         WHERE id = $1 AND deleted_at IS NULL AND status IN ('pending_approval', 'approved')"
    )
    .bind(request.id)
    .bind(certificate_id)
    })?;
    Ok(affected == 1)
}
