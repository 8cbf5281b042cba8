//! Attacks: access (see main.rs).
