//! Use cases. Each operation takes the [`Actor`] it runs as, authorizes once
//! before any write, validates, calls crypto and store, and audits in the same
//! transaction as the change.

pub mod access;
pub mod actor;
pub mod audit;
pub mod certificates;
pub mod identity;
pub mod policies;

pub use actor::{Actor, ActorKind};
