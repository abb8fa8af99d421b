//! The host-threads part of `ferrix bench sched`: `ferrix-sched-bench` (the real scheduler on
//! one host thread per core, busy-spun service times) over the same mean service times and
//! policies; its progress and tables are shown as it goes and kept for the report.

use crate::bench_sched::SchedBenchOptions;
use crate::error::CliError;
use ferrix_sched_bench::{HostBenchOptions, HostReport};
use std::io::Write;

/// Writes to the progress stream and keeps a copy.
struct Tee<'a> {
    progress: &'a mut dyn Write,
    kept: Vec<u8>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.progress.write_all(buf);
        self.kept.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.progress.flush()
    }
}

/// Runs the host part: its report text (what was shown on `progress`) and its results.
pub(crate) fn host_section(
    o: &SchedBenchOptions,
    progress: &mut dyn Write,
) -> Result<(String, HostReport), CliError> {
    let opts = HostBenchOptions {
        service_means_us: o.service_us.clone(),
        policies: o.policies.clone(),
        ..HostBenchOptions::default()
    };
    let mut tee = Tee {
        progress,
        kept: Vec::new(),
    };
    let _ = writeln!(tee, "\nHost threads (ferrix-sched-bench):");
    let report = ferrix_sched_bench::run(&opts, &mut tee)
        .map_err(|e| CliError::Bench(format!("host threads: {e}")))?;
    Ok((String::from_utf8_lossy(&tee.kept).into_owned(), report))
}
