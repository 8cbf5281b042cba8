//! Typed queries over the five views of the schema: `active_certificates` and
//! `expiring_certificates` (secure database), `active_users_with_roles`,
//! `pending_approvals` and `certificate_summary` (core database).

use crate::db::Conn;
use crate::model::Timestamp;
use crate::model::{
    ActiveCertificate, ActiveUserWithRoles, CertificateId, CertificateSummary, ExpiringCertificate,
    OrganizationId, PendingApproval, UserId,
};
use crate::store::support::{
    after_time_id, fetch_all, fetch_page, in_ids_opt, shared_or_in_orgs, time_id_cursor,
};
use crate::store::{Filter, Page, PageRequest, Value, id_value, paginate};
use crate::{Result, on_conn};

#[derive(Debug, Clone, Default)]
pub struct ActiveCertificateFilter {
    pub owner_user_id: Option<UserId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
    /// Shared rows (no organization) or rows of these organizations: the
    /// reader's reach (None = everything).
    pub visible: Option<Vec<OrganizationId>>,
}

/// Certificates in service (active or expiring), without PEM or key
/// material, in id order.
pub async fn active_certificates(
    conn: &mut Conn<'_>,
    filter: &ActiveCertificateFilter,
    page: &PageRequest,
) -> Result<Page<ActiveCertificate>> {
    let limit = page.effective_limit()?;
    let mut f = Filter::new().eq_opt("owner_user_id", filter.owner_user_id.map(id_value));
    f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    f = shared_or_in_orgs(f, "organization_id", filter.visible.as_ref());
    if let Some(after) = page.cursor_id()? {
        f = f.clause("id > ?", vec![Value::Id(after)]);
    }
    let mut rows = fetch_page(
        conn,
        "SELECT * FROM active_certificates WHERE 1 = 1",
        &f,
        "id",
        limit,
    )
    .await?;
    Ok(paginate(&mut rows, limit, |c: &ActiveCertificate| {
        c.id.to_string()
    }))
}

/// Certificates in service expiring within 30 days, soonest first, ordered
/// by `(not_after, id)` with a keyset cursor over both. `organization_ids`
/// restricts to those organizations when given.
pub async fn expiring_certificates(
    conn: &mut Conn<'_>,
    organization_ids: Option<&[OrganizationId]>,
    page: &PageRequest,
) -> Result<Page<ExpiringCertificate>> {
    let mut f = Filter::new();
    if let Some(orgs) = organization_ids {
        f = crate::store::support::in_ids(f, "organization_id", orgs);
    }
    expiring_page(conn, f, page).await
}

/// The view's rows that expire by `until`, shared or within `visible`
/// (None = everything), soonest first.
pub async fn expiring_visible(
    conn: &mut Conn<'_>,
    until: Timestamp,
    visible: Option<&Vec<OrganizationId>>,
    page: &PageRequest,
) -> Result<Page<ExpiringCertificate>> {
    let f = Filter::new().clause("not_after <= ?", vec![Value::Time(until)]);
    let f = shared_or_in_orgs(f, "organization_id", visible);
    expiring_page(conn, f, page).await
}

async fn expiring_page(
    conn: &mut Conn<'_>,
    f: Filter,
    page: &PageRequest,
) -> Result<Page<ExpiringCertificate>> {
    let limit = page.effective_limit()?;
    let f = after_time_id(f, "not_after", "id", page.cursor.as_deref(), false)?;
    let mut rows = fetch_page(
        conn,
        "SELECT * FROM expiring_certificates WHERE 1 = 1",
        &f,
        "not_after, id",
        limit,
    )
    .await?;
    Ok(paginate(&mut rows, limit, |c: &ExpiringCertificate| {
        time_id_cursor(c.not_after, c.id)
    }))
}

/// Active users with their current role codes and names, in id order.
pub async fn active_users_with_roles(
    conn: &mut Conn<'_>,
    page: &PageRequest,
) -> Result<Page<ActiveUserWithRoles>> {
    active_users_with_roles_in(conn, None, page).await
}

/// [`active_users_with_roles`] of the members of `organizations` (None =
/// everyone).
pub async fn active_users_with_roles_in(
    conn: &mut Conn<'_>,
    organizations: Option<&Vec<OrganizationId>>,
    page: &PageRequest,
) -> Result<Page<ActiveUserWithRoles>> {
    let limit = page.effective_limit()?;
    let mut f = Filter::new();
    if let Some(orgs) = organizations {
        f = crate::store::users::members_of(f, orgs);
    }
    if let Some(after) = page.cursor_id()? {
        f = f.clause("id > ?", vec![Value::Id(after)]);
    }
    let mut rows = fetch_page(
        conn,
        "SELECT * FROM active_users_with_roles WHERE 1 = 1",
        &f,
        "id",
        limit,
    )
    .await?;
    Ok(paginate(&mut rows, limit, |u: &ActiveUserWithRoles| {
        u.id.to_string()
    }))
}

/// One active user with roles; None when the user is not active (or absent).
pub async fn active_user_with_roles(
    conn: &mut Conn<'_>,
    user_id: UserId,
) -> Result<Option<ActiveUserWithRoles>> {
    Ok(on_conn!(conn, |c| {
        sqlx::query_as::<_, ActiveUserWithRoles>(
            "SELECT * FROM active_users_with_roles WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(&mut *c)
        .await
    })?)
}

/// Every approval step awaiting a decision, in step id order.
pub async fn pending_approvals(
    conn: &mut Conn<'_>,
    page: &PageRequest,
) -> Result<Page<PendingApproval>> {
    let limit = page.effective_limit()?;
    let mut f = Filter::new();
    if let Some(after) = page.cursor_id()? {
        f = f.clause("workflow_step_id > ?", vec![Value::Id(after)]);
    }
    let mut rows = fetch_page(
        conn,
        "SELECT * FROM pending_approvals WHERE 1 = 1",
        &f,
        "workflow_step_id",
        limit,
    )
    .await?;
    Ok(paginate(&mut rows, limit, |p: &PendingApproval| {
        p.workflow_step_id.to_string()
    }))
}

/// The schema summary's "pending approvals for user" query: steps assigned to
/// the user, or to a role the user holds unrevoked. Soft-deleted grants do
/// not count either.
pub async fn pending_approvals_for_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
) -> Result<Vec<PendingApproval>> {
    Ok(on_conn!(conn, |c| sqlx::query_as::<_, PendingApproval>(
        "SELECT * FROM pending_approvals
         WHERE assigned_to_user_id = $1
            OR assigned_to_role_id IN (
                SELECT role_id FROM user_roles
                WHERE user_id = $1 AND revoked_at IS NULL AND deleted_at IS NULL
            )
         ORDER BY created_at, workflow_step_id"
    )
    .bind(user_id)
    .fetch_all(&mut *c)
    .await)?)
}

#[derive(Debug, Clone, Default)]
pub struct CertificateSummaryFilter {
    pub owner_user_id: Option<UserId>,
    pub organization_ids: Option<Vec<OrganizationId>>,
    pub environment: Option<String>,
    /// Shared rows or rows of these organizations (None = everything).
    pub visible: Option<Vec<OrganizationId>>,
}

/// Certificate metadata joined with owner and organization, in id order.
pub async fn certificate_summary(
    conn: &mut Conn<'_>,
    filter: &CertificateSummaryFilter,
    page: &PageRequest,
) -> Result<Page<CertificateSummary>> {
    let limit = page.effective_limit()?;
    let mut f = Filter::new()
        .eq_opt("owner_user_id", filter.owner_user_id.map(id_value))
        .eq_opt("environment", filter.environment.clone());
    f = in_ids_opt(f, "organization_id", filter.organization_ids.as_ref());
    f = shared_or_in_orgs(f, "organization_id", filter.visible.as_ref());
    if let Some(after) = page.cursor_id()? {
        f = f.clause("id > ?", vec![Value::Id(after)]);
    }
    let mut rows = fetch_page(
        conn,
        "SELECT * FROM certificate_summary WHERE 1 = 1",
        &f,
        "id",
        limit,
    )
    .await?;
    Ok(paginate(&mut rows, limit, |s: &CertificateSummary| {
        s.id.to_string()
    }))
}

/// The summary row of one certificate.
pub async fn certificate_summary_for(
    conn: &mut Conn<'_>,
    certificate_id: CertificateId,
) -> Result<Option<CertificateSummary>> {
    let rows: Vec<CertificateSummary> = fetch_all(
        conn,
        "SELECT * FROM certificate_summary WHERE 1 = 1",
        &Filter::new().eq("certificate_id", id_value(certificate_id)),
        "",
    )
    .await?;
    Ok(rows.into_iter().next())
}
