//! Notifications: written in the same transaction as the event they report,
//! read and marked by their users, and handed to the host for delivery
//! (email, chat) through an at-least-once outbox.

use serde_json::json;

use crate::db::Conn;
use crate::model::{
    Notification, NotificationId, NotificationPriority, NotificationType, ResourceId, UserId,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, commit_audited};
use crate::store::{Page, PageRequest, notifications, now};
use crate::{Clm, Error, Result};

/// A notice to write.
#[derive(Debug, Clone)]
pub struct Notice {
    /// The recipient.
    pub user_id: UserId,
    /// What the notice is about, for filtering and display.
    pub notification_type: NotificationType,
    /// Normal unless set with [`Notice::priority`].
    pub priority: NotificationPriority,
    /// A short headline.
    pub title: String,
    /// The text shown to the user.
    pub message: String,
    /// The kind of row the notice concerns (`certificate`), if any.
    pub resource_type: Option<String>,
    /// The primary key of that row.
    pub resource_id: Option<ResourceId>,
    /// One notice per key, ever: repeated events (a daily expiry check)
    /// produce one row, never a storm.
    pub dedup_key: Option<String>,
}

impl Notice {
    /// A normal-priority notice to `user_id`, about nothing in particular until
    /// [`Notice::about`].
    pub fn new(
        user_id: UserId,
        notification_type: NotificationType,
        title: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Notice {
            user_id,
            notification_type,
            priority: NotificationPriority::Normal,
            title: title.into(),
            message: message.into(),
            resource_type: None,
            resource_id: None,
            dedup_key: None,
        }
    }

    /// Sets the row the notice concerns: its kind and primary key.
    pub fn about(mut self, resource_type: &str, id: impl Into<uuid::Uuid>) -> Self {
        self.resource_type = Some(resource_type.to_string());
        self.resource_id = Some(ResourceId(id.into()));
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: NotificationPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Writes the notice only if `dedup_key` was never used (see [`Notice::dedup_key`]).
    pub fn once(mut self, dedup_key: impl Into<String>) -> Self {
        self.dedup_key = Some(dedup_key.into());
        self
    }
}

/// Writes a notice inside the caller's core transaction; false when its
/// dedup key was already used.
pub async fn notify(conn: &mut Conn<'_>, notice: Notice) -> Result<bool> {
    let at = now();
    let row = Notification {
        id: NotificationId::new(),
        user_id: notice.user_id,
        notification_type: notice.notification_type,
        priority: notice.priority,
        title: notice.title,
        message: notice.message,
        resource_type: notice.resource_type,
        resource_id: notice.resource_id,
        dedup_key: notice.dedup_key,
        is_read: false,
        read_at: None,
        delivered_at: None,
        delivery_attempts: 0,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    };
    notifications::insert_if_new(conn, &row).await
}

/// Upper bound of one outbox fetch.
pub const MAX_OUTBOX_BATCH: u32 = 1000;

impl Clm {
    /// The acting user's notifications, newest first (self-service).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_notifications(
        &self,
        actor: &Actor,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<Notification>> {
        let user_id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "notifications belong to a user"))?;
        let mut conn = self.databases().acquire_core_read().await?;
        notifications::list_for_user(&mut conn.conn(), user_id, unread_only, page).await
    }

    /// Another user's notifications, newest first: needs
    /// `notifications:read` and that user within reach (NotFound otherwise,
    /// as for a user that does not exist). One's own need nothing.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_user_notifications(
        &self,
        actor: &Actor,
        user_id: UserId,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<Notification>> {
        if actor.user_id() != Some(user_id) {
            self.authorize_about_user(actor, "notifications", "read", user_id)
                .await?;
        }
        let mut conn = self.databases().acquire_core_read().await?;
        notifications::list_for_user(&mut conn.conn(), user_id, unread_only, page).await
    }

    /// Marks one of the acting user's notifications read (NotFound for
    /// anyone else's).
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn mark_notification_read(&self, actor: &Actor, id: NotificationId) -> Result<()> {
        let user_id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "notifications belong to a user"))?;
        let mut tx = self.databases().core.begin().await?;
        notifications::mark_read(&mut tx.conn(), user_id, id, now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("notification.read", "update").resource("notification", id),
        )
        .await
    }

    /// Marks all of the acting user's notifications read; returns how many.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn mark_all_notifications_read(&self, actor: &Actor) -> Result<u64> {
        let user_id = actor
            .user_id()
            .ok_or_else(|| Error::invalid("actor", "notifications belong to a user"))?;
        let mut tx = self.databases().core.begin().await?;
        let marked = notifications::mark_all_read(&mut tx.conn(), user_id, now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("notification.read_all", "update").details(json!({"count": marked})),
        )
        .await?;
        Ok(marked)
    }

    /// Undelivered notifications, oldest first (so per-user order holds),
    /// for the host to deliver. Delivery is at least once: a notice stays here
    /// until [`Clm::mark_notifications_delivered`] is called for it.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn fetch_undelivered_notifications(
        &self,
        actor: &Actor,
        limit: u32,
    ) -> Result<Vec<Notification>> {
        self.authorize(actor, Access::new("notifications", "deliver"))
            .await?;
        if limit == 0 || limit > MAX_OUTBOX_BATCH {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_OUTBOX_BATCH}"),
            ));
        }
        let mut conn = self.databases().core.acquire().await?;
        notifications::outbox(&mut conn.conn(), limit).await
    }

    /// Records delivery of notifications fetched from the outbox.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn mark_notifications_delivered(
        &self,
        actor: &Actor,
        ids: &[NotificationId],
    ) -> Result<u64> {
        self.authorize(actor, Access::new("notifications", "deliver"))
            .await?;
        let mut tx = self.databases().core.begin().await?;
        let marked = notifications::mark_delivered(&mut tx.conn(), ids, now()).await?;
        commit_audited(
            tx,
            actor,
            AuditEntry::new("notification.delivered", "deliver").details(json!({"count": marked})),
        )
        .await?;
        Ok(marked)
    }
}
