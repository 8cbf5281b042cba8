//! The schema's views as operations: authorized like the tables they read
//! and cut to the reader's organizations (shared rows included), so a view
//! never shows a tenant what the table's own operations would not.
//! (`pending_approvals` lives with the workflows it belongs to.)

use chrono::{Duration, Utc};

use crate::model::{
    ActiveCertificate, ActiveUserWithRoles, CertificateSummary, ExpiringCertificate,
    OrganizationId, UserId,
};
use crate::service::actor::Access;
use crate::store::views::{self, ActiveCertificateFilter, CertificateSummaryFilter};
use crate::store::{Page, PageRequest};
use crate::{Actor, Clm, Error, Result};

/// What a view listing may be narrowed to; every set field must match.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ViewFilter {
    /// Only certificates of this owner.
    pub owner_user_id: Option<UserId>,
    /// Only these organizations (within the reader's own).
    pub organization_ids: Option<Vec<OrganizationId>>,
    /// `certificate_summary` only: the metadata's environment.
    pub environment: Option<String>,
}

/// The longest horizon `expiring_certificates` looks ahead: the view's own.
pub const EXPIRING_VIEW_DAYS: u32 = 30;

/// How many days ahead `expiring_certificates` looks: 1 to 30, by default
/// the view's whole window.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct ExpiringWithinDays(#[schemars(range(min = 1, max = 30))] pub u32);

impl Default for ExpiringWithinDays {
    fn default() -> Self {
        ExpiringWithinDays(EXPIRING_VIEW_DAYS)
    }
}

impl Clm {
    /// Certificates in service (active or expiring), without PEM, in id
    /// order.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn active_certificates(
        &self,
        actor: &Actor,
        filter: &ViewFilter,
        page: &PageRequest,
    ) -> Result<Page<ActiveCertificate>> {
        self.authorize(actor, Access::new("certificates", "read"))
            .await?;
        let filter = ActiveCertificateFilter {
            owner_user_id: filter.owner_user_id,
            organization_ids: filter.organization_ids.clone(),
            visible: actor.organizations_where("certificates", "read"),
        };
        let mut conn = self.databases().acquire_secure_read().await?;
        views::active_certificates(&mut conn.conn(), &filter, page).await
    }

    /// Certificates in service that expire within `days` (1 to 30, the
    /// view's window; search_certificates with `expires_before` looks
    /// further), soonest first.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn expiring_certificates(
        &self,
        actor: &Actor,
        days: u32,
        page: &PageRequest,
    ) -> Result<Page<ExpiringCertificate>> {
        if !(1..=EXPIRING_VIEW_DAYS).contains(&days) {
            return Err(Error::invalid(
                "days",
                format!(
                    "must be 1 to {EXPIRING_VIEW_DAYS} (the view's window), not {days}; search_certificates with expires_before looks further"
                ),
            ));
        }
        self.authorize(actor, Access::new("certificates", "read"))
            .await?;
        let until = crate::service::shifted("days", Utc::now(), Duration::days(i64::from(days)))?;
        let visible = actor.organizations_where("certificates", "read");
        let mut conn = self.databases().acquire_secure_read().await?;
        views::expiring_visible(&mut conn.conn(), until, visible.as_ref(), page).await
    }

    /// Active users with their current role codes and names, in id order:
    /// the members of the organizations where the actor reads users.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn active_users_with_roles(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<ActiveUserWithRoles>> {
        self.authorize(actor, Access::new("users", "read")).await?;
        let members_of = actor.organizations_where("users", "read");
        let mut conn = self.databases().acquire_core_read().await?;
        views::active_users_with_roles_in(&mut conn.conn(), members_of.as_ref(), page).await
    }

    /// Certificate metadata with owner and organization, in id order.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn certificate_summary(
        &self,
        actor: &Actor,
        filter: &ViewFilter,
        page: &PageRequest,
    ) -> Result<Page<CertificateSummary>> {
        self.authorize(actor, Access::new("certificates", "read"))
            .await?;
        let filter = CertificateSummaryFilter {
            owner_user_id: filter.owner_user_id,
            organization_ids: filter.organization_ids.clone(),
            environment: filter.environment.clone(),
            visible: actor.organizations_where("certificates", "read"),
        };
        let mut conn = self.databases().acquire_core_read().await?;
        views::certificate_summary(&mut conn.conn(), &filter, page).await
    }
}
