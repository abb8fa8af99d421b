//! The whole host bench: per mean service time, a p99-vs-load sweep of every policy, the max load
//! at the SLO (sweep, then bisection), the queueing models' max loads for the same core count,
//! and the comparison with the thesis.

use std::io::Write;
use std::time::{Duration, Instant};

use ferrix_sched::Policy;
use qsim::{Model, SimConfig, ZygosParams};
use serde::Serialize;

use crate::options::{HostBenchOptions, Steering};
use crate::point::{PointResult, median_of_runs};
use crate::{Error, thesis};

/// Max loads @ SLO of zero-overhead queueing models with `cores` workers (qsim), as fractions of
/// `cores / S̄`. They do not depend on S̄ (the SLO scales with it).
#[derive(Debug, Clone, Serialize)]
pub struct ModelMaxLoads {
    /// M/G/n/FCFS: one central queue, the bound every policy is compared with.
    pub central_fcfs: f64,
    /// n×M/G/1/FCFS with random assignment: the ideal partitioned policy.
    pub partitioned_fcfs: f64,
    /// qsim's ZygOS model with interrupts, zero steal and IPI costs, no flows.
    pub zygos: f64,
    /// qsim's ZygOS model without interrupts.
    pub zygos_noipi: f64,
}

impl ModelMaxLoads {
    /// qsim's model of `policy`.
    pub fn of(&self, policy: Policy) -> f64 {
        match policy {
            Policy::Zygos => self.zygos,
            Policy::ZygosNoIpi => self.zygos_noipi,
            Policy::Partitioned => self.partitioned_fcfs,
        }
    }
}

/// p99 latency of the zero-overhead queueing models at each load of the sweep, in units of S̄
/// (qsim; multiply by S̄).
#[derive(Debug, Clone, Serialize)]
pub struct ModelCurves {
    /// The sweep's loads.
    pub loads: Vec<f64>,
    /// M/G/n/FCFS.
    pub central_fcfs: Vec<f64>,
    /// n×M/G/1/FCFS, random assignment.
    pub partitioned_fcfs: Vec<f64>,
    /// qsim's ZygOS model with and without interrupts.
    pub zygos: Vec<f64>,
    pub zygos_noipi: Vec<f64>,
    /// Fraction of requests the ZygOS models run on a core other than their home one.
    pub zygos_steal: Vec<f64>,
    pub zygos_noipi_steal: Vec<f64>,
}

impl ModelCurves {
    /// qsim's model of `policy`.
    pub fn of(&self, policy: Policy) -> &[f64] {
        match policy {
            Policy::Zygos => &self.zygos,
            Policy::ZygosNoIpi => &self.zygos_noipi,
            Policy::Partitioned => &self.partitioned_fcfs,
        }
    }
}

/// Where the max load was found relative to the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bracket {
    /// Between two loads, refined by bisection.
    Bracketed,
    /// The lowest load of the sweep misses the SLO in a quiet run: the max load is below it
    /// (reported 0).
    BelowSweep,
    /// Every load of the sweep meets the SLO: the max load is at least the highest one.
    AboveSweep,
    /// Noise hides the max load: no quiet run missed the SLO but the highest load's run was noisy
    /// and missed it (the max load is the highest load that met the SLO, and may be higher), or
    /// no run met it but the lowest loads' runs were noisy (reported 0).
    Inconclusive,
}

/// One policy at one mean service time.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// The policy.
    #[serde(serialize_with = "policy_name")]
    pub policy: Policy,
    /// The sweep, by increasing load.
    pub sweep: Vec<PointResult>,
    /// The bisection probes, in the order run.
    pub probes: Vec<PointResult>,
    /// Highest load meeting the SLO: below the first sweep load that misses it.
    pub max_load: f64,
    /// How `max_load` relates to the sweep.
    pub bracket: Bracket,
    /// `max_load` / the M/G/n/FCFS model's.
    pub fraction_of_central_model: f64,
    /// `max_load` / qsim's model of the same policy.
    pub fraction_of_policy_model: f64,
    /// The run at `max_load` (None if below the sweep).
    pub at_max_load: Option<PointResult>,
    /// Highest steal fraction of the sweep, and its load.
    pub peak_steal_fraction: f64,
    pub peak_steal_load: f64,
}

/// Everything at one mean service time.
#[derive(Debug, Clone, Serialize)]
pub struct MeanReport {
    /// S̄, µs.
    pub mean_us: f64,
    /// SLO on the p99, µs.
    pub slo_us: f64,
    /// One per policy run, in the options' order.
    pub policies: Vec<PolicyReport>,
    /// Max-load ratios against partitioned (None if a policy was not run or partitioned's max
    /// load is 0).
    pub zygos_over_partitioned: Option<f64>,
    pub noipi_over_partitioned: Option<f64>,
    /// Whether max loads ordered zygos > zygos-noipi > partitioned.
    pub ordering: OrderingCheck,
}

/// The outcome of the thesis's ordering check, zygos > zygos-noipi > partitioned in max load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderingCheck {
    /// The max loads are strictly ordered so.
    Held,
    /// They are not.
    NotHeld,
    /// Host noise left a max load undetermined ([`Bracket::Inconclusive`]).
    Inconclusive,
    /// Not all three policies ran.
    NotRun,
}

impl MeanReport {
    /// The report of `policy`, if it ran.
    pub fn policy(&self, policy: Policy) -> Option<&PolicyReport> {
        self.policies.iter().find(|p| p.policy == policy)
    }
}

/// The host half of `ferrix bench sched`.
#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub cores: usize,
    pub flows: usize,
    pub steering: String,
    pub service: String,
    pub slo_factor: f64,
    pub runs_per_point: usize,
    pub requests_per_point: usize,
    pub warmup_requests: usize,
    pub ipi_min_interval_ns: u64,
    pub ipi_poll_ns: u64,
    pub seed: u64,
    /// Queueing models with `cores` workers: max loads @ SLO, and p99 at the sweep's loads.
    pub models: ModelMaxLoads,
    pub model_p99: ModelCurves,
    /// One per mean service time.
    pub means: Vec<MeanReport>,
    /// The thesis's numbers (16 hyperthreads), for comparison.
    pub thesis: thesis::Reference,
    /// Wall time of the whole bench, s.
    pub elapsed_s: f64,
}

fn policy_name<S: serde::Serializer>(p: &Policy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// The queueing models' max loads for `opts` (qsim bisection, seeded, a few hundred ms).
pub fn model_max_loads(opts: &HostBenchOptions) -> Result<ModelMaxLoads, Error> {
    let max = |model: Model| -> Result<f64, Error> {
        let mut cfg = SimConfig::new(model, opts.cores, opts.service.clone(), 0.5);
        cfg.slo = opts.slo_factor;
        cfg.seed = opts.seed;
        Ok(qsim::maxload::max_load(&cfg, opts.model_tolerance)?.max_load)
    };
    Ok(ModelMaxLoads {
        central_fcfs: max(Model::CentralFcfs)?,
        partitioned_fcfs: max(Model::PartitionedFcfs)?,
        zygos: max(zygos_model(true))?,
        zygos_noipi: max(zygos_model(false))?,
    })
}

fn zygos_model(interrupts: bool) -> Model {
    Model::Zygos(ZygosParams {
        interrupts,
        steal_cost: 0.0,
        ipi_cost: 0.0,
    })
}

/// The queueing models' p99 at each load of `opts.loads`, in units of S̄ (qsim).
pub fn model_curves(opts: &HostBenchOptions) -> Result<ModelCurves, Error> {
    let runs = |model: Model| -> Result<Vec<qsim::RunResult>, Error> {
        opts.loads
            .iter()
            .map(|&load| {
                let mut cfg = SimConfig::new(model.clone(), opts.cores, opts.service.clone(), load);
                cfg.slo = opts.slo_factor;
                cfg.seed = opts.seed;
                Ok(qsim::simulate(&cfg)?)
            })
            .collect()
    };
    let p99 = |rs: &[qsim::RunResult]| rs.iter().map(|r| r.p99.value).collect();
    let steal = |rs: &[qsim::RunResult]| rs.iter().map(|r| r.steal_rate).collect();
    let zygos = runs(zygos_model(true))?;
    let noipi = runs(zygos_model(false))?;
    Ok(ModelCurves {
        loads: opts.loads.clone(),
        central_fcfs: p99(&runs(Model::CentralFcfs)?),
        partitioned_fcfs: p99(&runs(Model::PartitionedFcfs)?),
        zygos: p99(&zygos),
        zygos_noipi: p99(&noipi),
        zygos_steal: steal(&zygos),
        zygos_noipi_steal: steal(&noipi),
    })
}

/// Runs the whole bench, printing progress and the tables to `out` as it goes.
pub fn run(opts: &HostBenchOptions, out: &mut impl Write) -> Result<HostReport, Error> {
    opts.validate()?;
    let start = Instant::now();
    let models = model_max_loads(opts)?;
    let model_p99 = model_curves(opts)?;
    let mut budget = Duration::from_secs_f64(opts.retry_budget_s);
    writeln!(
        out,
        "ferrix bench sched, host half: the ferrix-sched scheduler on {} host threads (one per \
         simulated core), {} flows ({}), {} service time, Poisson open loop; each point is the \
         median-p99 run of {} seeds, {} requests each after {} warm-up; SLO p99 <= {}·S̄",
        opts.cores,
        opts.flows,
        steering_name(opts.steering),
        opts.service,
        opts.runs_per_point,
        opts.requests_per_point,
        opts.warmup_requests,
        opts.slo_factor,
    )?;
    writeln!(
        out,
        "queueing models, {n} workers (qsim, zero overhead), max load @ SLO: M/G/{n}/FCFS {:.3}, \
         {n}×M/G/1/FCFS {:.3}, ZygOS model {:.3}, ZygOS-no-interrupts model {:.3}",
        models.central_fcfs,
        models.partitioned_fcfs,
        models.zygos,
        models.zygos_noipi,
        n = opts.cores,
    )?;
    let mut means = Vec::new();
    for &mean_us in &opts.service_means_us {
        let report = run_mean(opts, mean_us, &models, &mut budget, out)?;
        print_mean(&report, &models, &model_p99, opts.cores, out)?;
        means.push(report);
    }
    let report = HostReport {
        cores: opts.cores,
        flows: opts.flows,
        steering: steering_name(opts.steering),
        service: opts.service.to_string(),
        slo_factor: opts.slo_factor,
        runs_per_point: opts.runs_per_point,
        requests_per_point: opts.requests_per_point,
        warmup_requests: opts.warmup_requests,
        ipi_min_interval_ns: opts.ipi_min_interval_ns,
        ipi_poll_ns: opts.ipi_poll_ns,
        seed: opts.seed,
        models,
        model_p99,
        means,
        thesis: thesis::REFERENCE,
        elapsed_s: start.elapsed().as_secs_f64(),
    };
    print_thesis(&report, out)?;
    Ok(report)
}

fn steering_name(s: Steering) -> String {
    match s {
        Steering::Balanced => "balanced RSS".into(),
        Steering::Hashed => "hashed RSS".into(),
        Steering::AllOn(c) => format!("all on core {c}"),
    }
}

fn run_mean(
    opts: &HostBenchOptions,
    mean_us: f64,
    models: &ModelMaxLoads,
    budget: &mut Duration,
    out: &mut impl Write,
) -> Result<MeanReport, Error> {
    // Policies interleaved at each load, so a burst of host noise hits them alike rather than
    // wiping out one policy's whole sweep.
    let mut sweeps = vec![Vec::new(); opts.policies.len()];
    for &load in &opts.loads {
        for (sweep, &policy) in sweeps.iter_mut().zip(&opts.policies) {
            let p = median_of_runs(policy, load, mean_us, opts, budget)?;
            progress(&p, "", out)?;
            sweep.push(p);
        }
    }
    let mut policies = Vec::new();
    for (sweep, &policy) in sweeps.into_iter().zip(&opts.policies) {
        policies.push(find_max_load(
            policy, mean_us, sweep, opts, models, budget, out,
        )?);
    }
    let get = |p| policies.iter().find(|r: &&PolicyReport| r.policy == p);
    let ratio = |a: Option<&PolicyReport>, b: Option<&PolicyReport>| match (a, b) {
        (Some(a), Some(b)) if b.max_load > 0.0 => Some(a.max_load / b.max_load),
        _ => None,
    };
    let (z, n, p) = (
        get(Policy::Zygos),
        get(Policy::ZygosNoIpi),
        get(Policy::Partitioned),
    );
    let ordering = match (z, n, p) {
        (Some(z), Some(n), Some(p)) => {
            if [z, n, p].iter().any(|r| r.bracket == Bracket::Inconclusive) {
                OrderingCheck::Inconclusive
            } else if z.max_load > n.max_load && n.max_load > p.max_load {
                OrderingCheck::Held
            } else {
                OrderingCheck::NotHeld
            }
        }
        _ => OrderingCheck::NotRun,
    };
    Ok(MeanReport {
        mean_us,
        slo_us: opts.slo_factor * mean_us,
        zygos_over_partitioned: ratio(z, p),
        noipi_over_partitioned: ratio(n, p),
        ordering,
        policies,
    })
}

fn progress(p: &PointResult, tag: &str, out: &mut impl Write) -> Result<(), Error> {
    writeln!(
        out,
        "  S̄={:>4} µs {:<12} load {:.3}{tag}: p99 {:>9.1} µs{} steal {:>5.1} % IPIs {:>7.0}/s \
         stalled {:>4.1} %{}{}{}",
        p.mean_us,
        p.policy.name(),
        p.load,
        p.p99_us,
        if p.meets_slo { " " } else { "*" },
        100.0 * p.steal_fraction,
        p.ipis_per_s,
        100.0 * p.stall_fraction,
        if p.noisy { " NOISY" } else { "" },
        if p.p99_runs_us.len() > 1 || p.attempts > 1 {
            format!(
                " [p99 of each seed {}; {} runs]",
                p.p99_runs_us
                    .iter()
                    .map(|v| format!("{v:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                p.attempts
            )
        } else {
            String::new()
        },
        if p.lost + p.duplicated + p.fifo_violations > 0 {
            format!(
                " CHECK FAILED: lost {} duplicated {} fifo {}",
                p.lost, p.duplicated, p.fifo_violations
            )
        } else {
            String::new()
        },
    )?;
    Ok(())
}

/// Max load from the sweep, then bisection: the bracket's top is the first load whose run missed
/// the SLO while quiet (a noisy miss says nothing about the policy), its bottom the highest
/// load below that met the SLO. A noisy miss during the bisection stops it.
#[allow(clippy::too_many_arguments)]
fn find_max_load(
    policy: Policy,
    mean_us: f64,
    sweep: Vec<PointResult>,
    opts: &HostBenchOptions,
    models: &ModelMaxLoads,
    budget: &mut Duration,
    out: &mut impl Write,
) -> Result<PolicyReport, Error> {
    let clean_miss = sweep.iter().position(|p| !p.meets_slo && !p.noisy);
    let below = &sweep[..clean_miss.unwrap_or(sweep.len())];
    let last_meet = below.iter().rposition(|p| p.meets_slo);
    let mut probes = Vec::new();
    let (max_load, bracket, at_max_load) = match (clean_miss, last_meet) {
        (Some(0), _) => (0.0, Bracket::BelowSweep, None),
        // Nothing met the SLO, but the runs below the first quiet miss were all noisy.
        (_, None) => (0.0, Bracket::Inconclusive, None),
        (None, Some(i)) => {
            let bracket = if i + 1 == sweep.len() {
                Bracket::AboveSweep
            } else {
                Bracket::Inconclusive
            };
            (sweep[i].load, bracket, Some(sweep[i].clone()))
        }
        (Some(miss), Some(i)) => {
            let (mut lo, mut hi) = (sweep[i].load, sweep[miss].load);
            let mut at = sweep[i].clone();
            for _ in 0..opts.refine_probes {
                let mid = 0.5 * (lo + hi);
                let p = median_of_runs(policy, mid, mean_us, opts, budget)?;
                progress(&p, " (bisect)", out)?;
                let (meets, noisy) = (p.meets_slo, p.noisy);
                probes.push(p.clone());
                if meets {
                    lo = mid;
                    at = p;
                } else if noisy {
                    break;
                } else {
                    hi = mid;
                }
            }
            (lo, Bracket::Bracketed, Some(at))
        }
    };
    let (peak_steal_fraction, peak_steal_load) = sweep
        .iter()
        .map(|p| (p.steal_fraction, p.load))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    let frac = |m: f64| if m > 0.0 { max_load / m } else { 0.0 };
    Ok(PolicyReport {
        policy,
        fraction_of_central_model: frac(models.central_fcfs),
        fraction_of_policy_model: frac(models.of(policy)),
        sweep,
        probes,
        max_load,
        bracket,
        at_max_load,
        peak_steal_fraction,
        peak_steal_load,
    })
}

fn print_mean(
    r: &MeanReport,
    models: &ModelMaxLoads,
    curves: &ModelCurves,
    cores: usize,
    out: &mut impl Write,
) -> Result<(), Error> {
    writeln!(out)?;
    writeln!(
        out,
        "S̄ = {} µs, SLO p99 <= {} µs: p99 µs (* misses the SLO, ~ noisy run) (the policy's \
         qsim model) / steal % / IPIs per s",
        r.mean_us, r.slo_us
    )?;
    write!(out, "  load ")?;
    for p in &r.policies {
        write!(out, "| {:^39} ", p.policy.name())?;
    }
    writeln!(out)?;
    let loads: Vec<f64> = r
        .policies
        .first()
        .map(|p| p.sweep.iter().map(|s| s.load).collect())
        .unwrap_or_default();
    for (i, load) in loads.iter().enumerate() {
        write!(out, "  {load:.2} ")?;
        for p in &r.policies {
            let s = &p.sweep[i];
            let model = curves.of(p.policy).get(i).map_or(0.0, |m| m * r.mean_us);
            write!(
                out,
                "| {:>9.1}{}{} ({:>6.0}) {:>5.1} % {:>7.0}/s ",
                s.p99_us,
                if s.meets_slo { " " } else { "*" },
                if s.noisy { "~" } else { " " },
                model,
                100.0 * s.steal_fraction,
                s.ipis_per_s
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "S̄ = {} µs: max load @ SLO (fraction of {cores}/S̄; < below the sweep, + above it, ? noisy above); \
         M/G/{cores}/FCFS model {:.3}",
        r.mean_us, models.central_fcfs
    )?;
    writeln!(
        out,
        "  {:<12} {:>9} {:>10} {:>20} {:>8} {:>9} {:>9} {:>14} {:>6}",
        "policy",
        "max load",
        "of M/G/n",
        "of own model",
        "steal %",
        "IPIs/s",
        "stalled",
        "peak steal %",
        "noisy"
    )?;
    for p in &r.policies {
        let (steal, ipis, stalled) = p.at_max_load.as_ref().map_or((0.0, 0.0, 0.0), |a| {
            (
                100.0 * a.steal_fraction,
                a.ipis_per_s,
                100.0 * a.stall_fraction,
            )
        });
        let points = p.sweep.iter().chain(&p.probes);
        let noisy = points.clone().filter(|s| s.noisy).count();
        writeln!(
            out,
            "  {:<12} {:>8.3}{} {:>8.1} % {:>8.1} % of {:.3} {:>8.1} {:>9.0} {:>7.1} % {:>7.1} @ {:.2} {:>3}/{}",
            p.policy.name(),
            p.max_load,
            match p.bracket {
                Bracket::Bracketed => " ",
                Bracket::BelowSweep => "<",
                Bracket::AboveSweep => "+",
                Bracket::Inconclusive => "?",
            },
            100.0 * p.fraction_of_central_model,
            100.0 * p.fraction_of_policy_model,
            models.of(p.policy),
            steal,
            ipis,
            stalled,
            100.0 * p.peak_steal_fraction,
            p.peak_steal_load,
            noisy,
            points.count(),
        )?;
    }
    let fmt = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.2}x"));
    writeln!(
        out,
        "  ratios: zygos/partitioned {}, zygos-noipi/partitioned {}; ordering zygos > zygos-noipi \
         > partitioned: {}",
        fmt(r.zygos_over_partitioned),
        fmt(r.noipi_over_partitioned),
        match r.ordering {
            OrderingCheck::Held => "held",
            OrderingCheck::NotHeld => "NOT held",
            OrderingCheck::Inconclusive => "inconclusive (host noise left a max load undetermined)",
            OrderingCheck::NotRun => "n/a (not all policies ran)",
        }
    )?;
    Ok(())
}

fn print_thesis(r: &HostReport, out: &mut impl Write) -> Result<(), Error> {
    let t = &r.thesis;
    writeln!(out)?;
    writeln!(
        out,
        "thesis (ZygOS, {} hyperthreads, exponential, SLO p99 <= 10·S̄): {:.0} % of M/G/{}/FCFS at \
         S̄ = 10 µs, {:.0} % at 25 µs; steal rate without IPIs peaks ≈ {:.0} % of events (≈ {:.0} % \
         in simulation)",
        t.cores,
        100.0 * t.zygos_fraction_10us,
        t.cores,
        100.0 * t.zygos_fraction_25us,
        100.0 * t.steal_rate_no_ipi,
        100.0 * t.steal_rate_no_ipi_sim,
    )?;
    for m in &r.means {
        let z = m.policy(Policy::Zygos);
        let n = m.policy(Policy::ZygosNoIpi);
        writeln!(
            out,
            "here (host threads, {} cores), S̄ = {} µs: zygos {} of M/G/{}/FCFS; zygos-noipi peak \
             steal rate {}; qsim's ZygOS-no-interrupts model with {} cores peaks at {:.0} %",
            r.cores,
            m.mean_us,
            z.map_or("n/a".into(), |z| format!(
                "{:.0} %",
                100.0 * z.fraction_of_central_model
            )),
            r.cores,
            n.map_or("n/a".into(), |n| format!(
                "{:.0} % of events (at load {:.2})",
                100.0 * n.peak_steal_fraction,
                n.peak_steal_load
            )),
            r.cores,
            100.0
                * r.model_p99
                    .zygos_noipi_steal
                    .iter()
                    .copied()
                    .fold(0.0, f64::max),
        )?;
    }
    writeln!(out, "host bench took {:.1} s", r.elapsed_s)?;
    Ok(())
}

impl HostReport {
    /// The report as pretty JSON.
    pub fn write_json(&self, out: &mut impl Write) -> Result<(), Error> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)?;
        Ok(())
    }

    /// Every point (sweep and bisection probes) as CSV, with a header line.
    pub fn write_csv(&self, out: &mut impl Write) -> Result<(), Error> {
        writeln!(
            out,
            "mean_us,policy,kind,load,p50_us,p99_us,p999_us,mean_latency_us,meets_slo,\
             steal_fraction,events_per_claim,ipis_per_s,ipis_rate_limited,stalls,stall_fraction,\
             max_stall_us,noisy,attempts,achieved_rps,events_per_core"
        )?;
        for m in &self.means {
            for p in &m.policies {
                let rows = p.sweep.iter().map(|s| ("sweep", s));
                let probes = p.probes.iter().map(|s| ("bisect", s));
                for (kind, s) in rows.chain(probes) {
                    writeln!(
                        out,
                        "{},{},{kind},{:.4},{:.2},{:.2},{:.2},{:.2},{},{:.5},{:.4},{:.1},{},{},{:.5},{:.1},{},{},{:.1},{}",
                        m.mean_us,
                        p.policy.name(),
                        s.load,
                        s.p50_us,
                        s.p99_us,
                        s.p999_us,
                        s.mean_latency_us,
                        s.meets_slo,
                        s.steal_fraction,
                        s.events_per_claim,
                        s.ipis_per_s,
                        s.ipis_rate_limited,
                        s.stalls,
                        s.stall_fraction,
                        s.max_stall_us,
                        s.noisy,
                        s.attempts,
                        s.achieved_rps,
                        s.events_per_core
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(" "),
                    )?;
                }
            }
        }
        Ok(())
    }
}
