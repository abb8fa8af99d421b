//! `r2p2-server` of r2p2-linux, built inside this test package so integration tests can run it
//! as a child process inside a test namespace (`ip netns exec`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    r2p2_linux::cli::server_main()
}
