//! The `ferrix` command: see `ferrix --help` and tools/ferrix-cli/README.md.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(ferrix_cli::cli::main());
}
