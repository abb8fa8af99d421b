//! The `lancet` command.
#![forbid(unsafe_code)]

fn main() {}
