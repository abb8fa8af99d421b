//! `r2p2-router`: the R2P2 router (JBSQ, SVEN, ...) on Linux sockets, forwarding with the
//! client as source through a raw socket.

fn main() -> std::process::ExitCode {
    r2p2_linux::cli::router_main()
}
