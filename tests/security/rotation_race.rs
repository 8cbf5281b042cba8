//! Attacks: rotation_race (see main.rs).
