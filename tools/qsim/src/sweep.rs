//! Load sweeps: run several models over a list of loads, on all cores, with a progress bar.
//! Every point uses the same seed, so the points see the same request stream scaled in time
//! (common random numbers) and a sweep is reproducible whatever the thread count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::ProgressBar;

use crate::{Model, QsimError, RunResult, SimConfig, simulate};

/// Parse `START:STOP:STEP` (inclusive of STOP within rounding) or `a,b,c`.
pub fn parse_loads(text: &str) -> Result<Vec<f64>, QsimError> {
    let bad = || QsimError::BadLoads(text.to_owned());
    let loads: Vec<f64> = if let [a, b, c] = text.split(':').collect::<Vec<_>>()[..] {
        let p = |s: &str| s.trim().parse::<f64>().map_err(|_| bad());
        let (start, stop, step) = (p(a)?, p(b)?, p(c)?);
        if step.is_nan() || step <= 0.0 || stop < start || (stop - start) / step > 10_000.0 {
            return Err(bad());
        }
        let count = ((stop - start) / step + 1e-9).floor() as usize;
        (0..=count).map(|i| start + i as f64 * step).collect()
    } else {
        text.split(',')
            .map(|s| s.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?
    };
    if loads.is_empty() || loads.iter().any(|l| !(*l > 0.0 && *l <= 1.5)) {
        return Err(bad());
    }
    Ok(loads)
}

/// Worker threads to use: all available cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Run `base` for every (model, load), `threads` at a time; results in model-major order.
/// `progress` shows a bar on stderr (hidden unless stderr is a terminal and `CI` is unset).
pub fn sweep(
    base: &SimConfig,
    models: &[Model],
    loads: &[f64],
    threads: usize,
    progress: bool,
) -> Result<Vec<RunResult>, QsimError> {
    let jobs: Vec<SimConfig> = models
        .iter()
        .flat_map(|m| {
            loads.iter().map(move |&load| SimConfig {
                model: m.clone(),
                load,
                ..base.clone()
            })
        })
        .collect();
    for j in &jobs {
        j.validate()?;
    }
    run_all(&jobs, threads, progress)
}

/// Run arbitrary configurations in parallel, keeping their order.
pub fn run_all(
    jobs: &[SimConfig],
    threads: usize,
    progress: bool,
) -> Result<Vec<RunResult>, QsimError> {
    let bar = if progress {
        ferrix_latplot::progress::bar(
            jobs.len() as u64,
            "{bar:40} {pos}/{len} runs {elapsed} (eta {eta}) {msg}",
        )
    } else {
        ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<RunResult, QsimError>>>> =
        Mutex::new((0..jobs.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let r = simulate(job);
                    if let Ok(mut v) = slots.lock() {
                        v[i] = Some(r);
                    }
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let slots = slots.into_inner().unwrap_or_default();
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(QsimError::BadOption("a sweep worker failed".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_lists() {
        let l = parse_loads("0.1:0.95:0.05").unwrap();
        assert_eq!(l.len(), 18);
        assert!((l[17] - 0.95).abs() < 1e-9);
        assert_eq!(parse_loads("0.5, 0.9").unwrap(), vec![0.5, 0.9]);
        for bad in ["", "x", "0.1:0.9", "0.9:0.1:0.1", "0.1:0.9:0", "2.0", "0"] {
            assert!(parse_loads(bad).is_err(), "{bad}");
        }
    }
}
