//! The `qsim` command; see [`qsim::cli`].
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(qsim::main_with_args(std::env::args()));
}
