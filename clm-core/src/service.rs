//! Use cases. Each operation takes the [`Actor`] it runs as, authorizes once
//! before any write, validates, calls crypto and store, and audits in the same
//! transaction as the change.

pub mod access;
pub mod actor;
pub mod audit;
pub mod authorities;
pub mod cache;
pub mod certificates;
pub mod identity;
pub mod inventory;
pub mod issuance;
pub mod lifecycle;
pub mod notifications;
pub mod policies;
pub mod policy_check;
pub mod revocation;
pub mod rotation;
pub mod workflows;

pub use actor::{Actor, ActorKind};
