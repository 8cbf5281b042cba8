//! Attacks: compromised_keys (see main.rs).
