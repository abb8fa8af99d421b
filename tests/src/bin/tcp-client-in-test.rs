//! `ferrix-tcp-client` (tools/tcp-client), built inside this test package so integration
//! tests can run it as a child process inside a test namespace.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ferrix_tcp_client::main_cli()
}
