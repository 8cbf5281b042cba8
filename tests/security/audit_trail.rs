//! Attacks: audit_trail (see main.rs).
