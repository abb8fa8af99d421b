//! The `qsim` command; see [`qsim::cli`].

fn main() {
    std::process::exit(qsim::main_with_args(std::env::args()));
}
