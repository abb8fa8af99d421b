//! `r2p2-server`: an R2P2 echo or synthetic-spin server on a Linux UDP socket.

fn main() -> std::process::ExitCode {
    r2p2_linux::cli::server_main()
}
