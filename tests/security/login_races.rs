//! Attacks: login_races (see main.rs).
