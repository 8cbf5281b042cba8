// Present so the build-dependencies (host-side feature unification) count.
fn main() {}
