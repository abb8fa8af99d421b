//! todo
pub fn main_with_args(_a: impl IntoIterator<Item = String>) -> i32 { 0 }
