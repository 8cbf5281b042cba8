//! `certificate_requests`: CSRs and issuance requests.

use crate::db::Conn;
use crate::model::{CertificateId, CertificateRequest, OrganizationId, RequestStatus, UserId};
use crate::store::support::{in_ids_opt, in_texts, insert_one, insert_rows, require_row};
use crate::store::{Filter, Page, PageRequest, get_by, id_value, list};
use crate::{Result, exec, table};

table!(
    CertificateRequests,
    CertificateRequest,
    "certificate_requests",
    "certificate request",
    id = crate::model::CertificateRequestId;
    insert |r| {
        id: r.id,
        request_id: r.request_id.as_str(),
        csr_pem: r.csr_pem.as_deref(),
        common_name: r.common_name.as_deref(),
        subject_dn: r.subject_dn.as_str(),
        subject_alternative_names: &r.subject_alternative_names,
        key_algorithm: r.key_algorithm.as_str(),
        key_size: r.key_size,
        certificate_kind: r.certificate_kind.as_str(),
        validity_days: r.validity_days,
        status: r.status.as_str(),
        issuer_certificate_id: r.issuer_certificate_id,
        certificate_id: r.certificate_id,
        renewal_of_certificate_id: r.renewal_of_certificate_id,
        reuse_key: r.reuse_key,
        requested_by_user_id: r.requested_by_user_id,
        owner_user_id: r.owner_user_id,
        organization_id: r.organization_id,
        policy_id: r.policy_id,
        workflow_instance_id: r.workflow_instance_id,
        failure_reason: r.failure_reason.as_deref(),
        expires_at: r.expires_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
        deleted_at: r.deleted_at,
    }
);

#[derive(Debug, Clone, Default)]
pub struct CertificateRequestFilter {
    pub status: Option<Vec<RequestStatus>>,
    pub requested_by_user_id: Option<UserId>,
    pub owner_user_id: Option<UserId>,
    pub renewal_of_certificate_id: Option<CertificateId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
}

pub async fn insert(conn: &mut Conn<'_>, request: &CertificateRequest) -> Result<()> {
    insert_one::<CertificateRequests>(conn, request).await
}

/// Inserts many requests (a group commit of issuances): on PostgreSQL one
/// statement of column arrays, on SQLite multi-row INSERTs under its bind
/// limit. Run it in a transaction for all-or-nothing.
pub async fn insert_many(conn: &mut Conn<'_>, requests: &[CertificateRequest]) -> Result<u64> {
    insert_rows::<CertificateRequests>(conn, requests).await
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

/// Live requests still `pending_approval` with a workflow instance, after
/// `after` in id order, with their instance: for the reconcile walk, which
/// settles those whose instance has already ended.
pub async fn waiting_on_workflow_after(
    conn: &mut Conn<'_>,
    after: Option<crate::model::CertificateRequestId>,
    limit: u32,
) -> Result<
    Vec<(
        crate::model::CertificateRequestId,
        crate::model::WorkflowInstanceId,
    )>,
> {
    let after = after.unwrap_or(crate::model::CertificateRequestId(uuid::Uuid::nil()));
    Ok(crate::on_conn!(conn, |c| sqlx::query_as::<
        _,
        (
            crate::model::CertificateRequestId,
            crate::model::WorkflowInstanceId,
        ),
    >(
        "SELECT id, workflow_instance_id FROM certificate_requests
         WHERE status = 'pending_approval' AND workflow_instance_id IS NOT NULL
           AND deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await)?)
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
