//! `ferrix-tcp-client` (see the library's documentation).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ferrix_tcp_client::main_cli()
}
