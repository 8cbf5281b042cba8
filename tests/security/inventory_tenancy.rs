//! Attacks: inventory_tenancy (see main.rs).
