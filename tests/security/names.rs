//! Attacks: names (see main.rs).
