//! The `ferrix` command, built inside this test package so integration tests can run it as a
//! child process (e.g. under `ip netns exec` to reach a TAP device in a test namespace).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(ferrix_cli::cli::main());
}
