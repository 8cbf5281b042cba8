//! Use cases. Each operation takes the [`Actor`] it runs as, authorizes once
//! before any write, validates, calls crypto and store, and audits in the same
//! transaction as the change.
//!
//! Arithmetic here is checked or saturating (the lint below, outside tests): numbers come
//! from callers, stored documents and the database, and none may panic.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod access;
pub mod actor;
pub mod audit;
pub mod authorities;
pub mod cache;
pub mod certificates;
pub mod crls;
pub mod exports;
pub mod identity;
pub mod inventory;
pub mod issuance;
pub mod lifecycle;
pub mod maintenance;
pub mod notifications;
pub mod ocsp;
pub mod policies;
pub mod policy_check;
pub mod revocation;
pub mod rollover;
pub mod rotation;
pub mod views;
pub mod workflows;

pub use actor::{Actor, ActorKind, Grants};

/// A caller's "as of" time, checked before any arithmetic on it: within the
/// years X.509 can express (1950 to 9999), so adding thresholds or windows
/// to it can never overflow.
pub(crate) fn checked_instant(
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> crate::Result<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    if (1950..=9999).contains(&at.year()) {
        Ok(at)
    } else {
        Err(crate::Error::invalid(
            field,
            format!("{at} is outside the years 1950 to 9999"),
        ))
    }
}

/// `at + by`, or InvalidInput naming `field` when that leaves the calendar.
pub(crate) fn shifted(
    field: &str,
    at: chrono::DateTime<chrono::Utc>,
    by: chrono::TimeDelta,
) -> crate::Result<chrono::DateTime<chrono::Utc>> {
    at.checked_add_signed(by).ok_or_else(|| {
        crate::Error::invalid(field, format!("{at} shifted by {by} is out of range"))
    })
}
