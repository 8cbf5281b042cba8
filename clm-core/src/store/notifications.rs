//! `notifications`: per-user messages plus the delivery outbox.

use sqlx::AssertSqlSafe;

use crate::db::Conn;
use crate::model::{Notification, NotificationId, NotificationType, Timestamp, UserId};
use crate::store::support::{
    MAX_BIND_PARAMS, after_time_id, fetch_all, fetch_page, placeholders, require_row,
    time_id_cursor,
};
use crate::store::{Filter, Page, PageRequest, Value, get_by, id_value, list, paginate};
use crate::{Result, exec, table};

table!(
    Notifications,
    Notification,
    "notifications",
    "notification",
    id = crate::model::NotificationId
);

#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub user_id: Option<UserId>,
    pub notification_type: Option<NotificationType>,
    pub is_read: Option<bool>,
    pub delivered: Option<bool>,
}

const INSERT: &str = "INSERT INTO notifications (id, user_id, notification_type, priority, title, message,
        resource_type, resource_id, dedup_key, is_read, read_at, delivered_at, delivery_attempts, created_at,
        updated_at, deleted_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

macro_rules! bind_notification {
    ($query:expr, $n:expr) => {
        $query
            .bind($n.id)
            .bind($n.user_id)
            .bind($n.notification_type)
            .bind($n.priority)
            .bind(&$n.title)
            .bind(&$n.message)
            .bind(&$n.resource_type)
            .bind($n.resource_id)
            .bind(&$n.dedup_key)
            .bind($n.is_read)
            .bind($n.read_at)
            .bind($n.delivered_at)
            .bind($n.delivery_attempts)
            .bind($n.created_at)
            .bind($n.updated_at)
            .bind($n.deleted_at)
    };
}

pub async fn insert(conn: &mut Conn<'_>, notification: &Notification) -> Result<()> {
    exec!(conn, |c| bind_notification!(
        sqlx::query(INSERT),
        notification
    ))?;
    Ok(())
}

/// Inserts unless a notification with the same `dedup_key` exists (deleted
/// ones included). Returns whether a row was written.
pub async fn insert_if_new(conn: &mut Conn<'_>, notification: &Notification) -> Result<bool> {
    let sql = format!("{INSERT} ON CONFLICT (dedup_key) DO NOTHING");
    let affected = exec!(conn, |c| bind_notification!(
        sqlx::query(AssertSqlSafe(sql)),
        notification
    ))?;
    Ok(affected == 1)
}

/// Writes the mutable columns: read and delivery state.
pub async fn update(conn: &mut Conn<'_>, notification: &Notification) -> Result<()> {
    let affected = exec!(conn, |c| {
        sqlx::query(
        "UPDATE notifications SET is_read = $2, read_at = $3, delivered_at = $4, delivery_attempts = $5,
            priority = $6
         WHERE id = $1 AND deleted_at IS NULL"
    )
    .bind(notification.id)
    .bind(notification.is_read)
    .bind(notification.read_at)
    .bind(notification.delivered_at)
    .bind(notification.delivery_attempts)
    .bind(notification.priority)
    })?;
    require_row(affected, "notification", notification.id)
}

pub async fn get_by_dedup_key(conn: &mut Conn<'_>, dedup_key: &str) -> Result<Notification> {
    get_by::<Notifications>(conn, "dedup_key", dedup_key).await
}

pub async fn list_notifications(
    conn: &mut Conn<'_>,
    filter: &NotificationFilter,
    page: &PageRequest,
) -> Result<Page<Notification>> {
    let mut f = Filter::new()
        .eq_opt("user_id", filter.user_id.map(id_value))
        .eq_opt(
            "notification_type",
            filter.notification_type.map(|t| t.as_str()),
        )
        .eq_opt("is_read", filter.is_read);
    match filter.delivered {
        Some(true) => f = f.clause("delivered_at IS NOT NULL", Vec::new()),
        Some(false) => f = f.clause("delivered_at IS NULL", Vec::new()),
        None => {}
    }
    list::<Notifications>(conn, &f, page).await
}

/// A user's inbox, newest first; cursor over `(created_at, id)`.
pub async fn list_for_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
    unread_only: bool,
    page: &PageRequest,
) -> Result<Page<Notification>> {
    let limit = page.effective_limit()?;
    let mut f = Filter::new().eq("user_id", id_value(user_id));
    if unread_only {
        f = f.clause("NOT is_read", Vec::new());
    }
    let f = after_time_id(f, "created_at", "id", page.cursor.as_deref(), true)?;
    let mut rows = fetch_page(
        conn,
        "SELECT * FROM notifications WHERE deleted_at IS NULL",
        &f,
        "created_at DESC, id DESC",
        limit,
    )
    .await?;
    Ok(paginate(&mut rows, limit, |n: &Notification| {
        time_id_cursor(n.created_at, n.id)
    }))
}

/// Marks one of the user's notifications read (first read time is kept).
/// NotFound when it is not theirs.
pub async fn mark_read(
    conn: &mut Conn<'_>,
    user_id: UserId,
    id: NotificationId,
    at: Timestamp,
) -> Result<()> {
    let affected = exec!(conn, |c| sqlx::query(
        "UPDATE notifications SET is_read = $3, read_at = COALESCE(read_at, $4)
         WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL"
    )
    .bind(id)
    .bind(user_id)
    .bind(true)
    .bind(at))?;
    require_row(affected, "notification", id)
}

/// Marks every unread notification of the user read; returns how many.
pub async fn mark_all_read(conn: &mut Conn<'_>, user_id: UserId, at: Timestamp) -> Result<u64> {
    exec!(conn, |c| sqlx::query(
        "UPDATE notifications SET is_read = $2, read_at = $3
         WHERE user_id = $1 AND NOT is_read AND deleted_at IS NULL"
    )
    .bind(user_id)
    .bind(true)
    .bind(at))
    .map_err(Into::into)
}

/// Undelivered notifications, oldest first (`idx_notifications_outbox`).
pub async fn outbox(conn: &mut Conn<'_>, limit: u32) -> Result<Vec<Notification>> {
    let tail = format!(" ORDER BY created_at, id LIMIT {}", limit.max(1));
    fetch_all(
        conn,
        "SELECT * FROM notifications WHERE delivered_at IS NULL AND deleted_at IS NULL",
        &Filter::new(),
        &tail,
    )
    .await
}

/// Marks notifications delivered (counting the attempt); returns how many
/// were still undelivered.
pub async fn mark_delivered(
    conn: &mut Conn<'_>,
    ids: &[NotificationId],
    at: Timestamp,
) -> Result<u64> {
    let mut marked = 0;
    for chunk in ids.chunks(MAX_BIND_PARAMS - 1) {
        let dialect = conn.dialect();
        let sql = format!(
            "UPDATE notifications SET delivered_at = {}, delivery_attempts = delivery_attempts + 1
             WHERE delivered_at IS NULL AND deleted_at IS NULL AND id IN ({})",
            placeholders(dialect, 1, 1),
            placeholders(dialect, 2, chunk.len())
        );
        let values: Vec<Value> = chunk.iter().map(|id| id_value(*id)).collect();
        marked += exec!(conn, |c| crate::bind_values!(
            sqlx::query(AssertSqlSafe(sql)).bind(at),
            &values
        ))?;
    }
    Ok(marked)
}
