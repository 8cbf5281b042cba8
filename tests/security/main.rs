//! Security suite: each test is one attack from the access review (issue 11),
//! run on SQLite and PostgreSQL. Modules group the attacks by area.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod audit_trail;
mod compromised_keys;
mod crls;
mod exports;
mod inventory_tenancy;
mod login_races;
mod maintenance;
mod members;
mod name_constraints;
mod names;
mod ocsp;
mod rollover;
mod rotation_race;
mod views;
