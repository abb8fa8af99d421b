//! Running an image under the ferrix KVM shim (in process, through `ferrix_shim::run`).
//!
//! The shim appends `ferrix.cpus=N` itself, so only the user's arguments are passed. Shim
//! errors become [`CliError::Shim`] (exit code 125); we do not depend on the shim's own
//! exit-code mapping.

use crate::error::CliError;
use crate::netspec::NetSpec;
use crate::options::{RunOptions, RunResult};
use crate::stats_live::LiveStats;
use ferrix_shim::net::{NetBackend, NetConfig};
use ferrix_shim::{StatsSink, VmConfig, VmOutcome};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Boots `image` under the shim with the machine described by `opts`.
pub fn run_shim(
    image: &Path,
    opts: &RunOptions,
    console: Box<dyn Write + Send>,
    live: Option<LiveStats>,
) -> Result<RunResult, CliError> {
    let backend = match &opts.net {
        None => None,
        Some(NetSpec::Tap(name)) => Some(NetBackend::Tap(name.clone())),
        Some(NetSpec::Switch(dir)) => Some(NetBackend::Switch(dir.clone())),
        Some(_) => {
            return Err(CliError::Usage(
                "the shim supports --net tap:NAME and --net switch:DIR".into(),
            ));
        }
    };
    let net = backend.map(|b| {
        let mut n = NetConfig::new(b);
        n.mac = opts.mac;
        n.model = opts.nic;
        n.pcap = opts.pcap.clone();
        n
    });
    let cfg = VmConfig {
        cpus: opts.cpus,
        mem_bytes: opts.mem_bytes,
        cmdline: opts.args.join(" "),
        timeout: opts.timeout,
        net,
        stats_sink: live.map(|l| StatsSink(Arc::new(move |rec: &[u8]| l.record(rec)))),
        ..VmConfig::new(image.to_path_buf())
    };
    let (outcome, stats) = ferrix_shim::run_with_stats(&cfg, console)?;
    if opts.stats
        && let Some(s) = stats
    {
        eprintln!("ferrix: shim virtio-net device:\n{s}");
    }
    Ok(outcome_to_result(outcome))
}

/// Maps the shim's outcome to a run result.
pub fn outcome_to_result(outcome: VmOutcome) -> RunResult {
    match outcome {
        VmOutcome::Exited(code) => RunResult {
            // Codes above i32::MAX cannot be process exit codes anyway; keep the low bits.
            exit_code: code as i32,
            timed_out: false,
        },
        VmOutcome::TimedOut => RunResult {
            exit_code: ferrix_abi::exit::HOST_TIMEOUT as i32,
            timed_out: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_codes() {
        assert_eq!(
            outcome_to_result(VmOutcome::Exited(3)),
            RunResult {
                exit_code: 3,
                timed_out: false
            }
        );
        assert_eq!(
            outcome_to_result(VmOutcome::TimedOut),
            RunResult {
                exit_code: 124,
                timed_out: true
            }
        );
    }
}
