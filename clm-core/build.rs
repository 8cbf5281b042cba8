//! `sqlx::migrate!` embeds the migrations' SQL at compile time; this makes
//! cargo rebuild the crate when one of them changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
