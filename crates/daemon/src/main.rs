//! prescaled.
fn main() {}
