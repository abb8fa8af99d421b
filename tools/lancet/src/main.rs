//! The `lancet` command (see `lancet::command`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lancet::command::main_with_args(std::env::args_os())
}
