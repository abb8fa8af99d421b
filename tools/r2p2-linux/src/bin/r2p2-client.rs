//! `r2p2-client`: sends N R2P2 requests and prints latency percentiles.

fn main() -> std::process::ExitCode {
    r2p2_linux::cli::client_main()
}
