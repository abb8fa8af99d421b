//! Command-line interface: `lancet run` (coordinator), `lancet agent`, `lancet server`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::agent::options::{AgentKind, DEFAULT_BUSY_POLL_US, TsMode};
use crate::coordinator::DEFAULT_LATENCY_AGENT_RPS;
use crate::workload::{AppProto, KvSizes, Transport, Workload};

/// Lancet: self-correcting open-loop latency measurement (coordinator + agents).
#[derive(Debug, Parser)]
#[command(name = "lancet", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Coordinate agents and measure latency at one load, a sweep, or the max load meeting an SLO.
    Run(Box<RunArgs>),
    /// Serve the agent control protocol (one coordinator at a time); each coordinator session
    /// configures the agent's kind (symmetric, throughput, latency) and timestamps.
    Agent(AgentArgs),
    /// Run the synthetic service-time test server (8-byte requests naming ns of work).
    Server(ServerArgs),
    /// Benchmark one agent core on loopback UDP: the max open-loop rate whose inter-arrivals
    /// pass Anderson-Darling, back-to-back send() and sendmmsg blasts, and the client-side cost
    /// of software and kernel (SO_TIMESTAMPING) timestamps.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// First open-loop rate tried (requests/s); it doubles until a rate fails, then bisects.
    #[arg(long, default_value_t = 20_000.0)]
    pub lo: f64,
    /// Highest rate tried.
    #[arg(long, default_value_t = 4_000_000.0)]
    pub hi: f64,
    /// Bisection steps after the first failing rate.
    #[arg(long, default_value_t = 4)]
    pub steps: usize,
    /// Measured seconds per rate (plus a quarter of that as warm-up), and of the blast.
    #[arg(long, default_value_t = 1.0)]
    pub secs: f64,
    /// Significance level of the Anderson-Darling inter-arrival test.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    /// Datagram payload bytes of the blast and timestamp loops.
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Datagrams per sendmmsg call in the batched blast (1..=1024).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Write the results as JSON to this file ('-' for stdout, replacing the text).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Control address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:5001")]
    pub listen: String,
    /// Exit after the first coordinator session ends.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    pub listen: String,
    /// Transport (tcp or udp; for R2P2 run `r2p2-server --synthetic-reply 8` from
    /// tools/r2p2-linux).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// Extra service time added per second since start (µs/s): a non-stationary server.
    #[arg(long, default_value_t = 0.0)]
    pub grow_us_per_s: f64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub duration_secs: f64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Server under test, host:port.
    #[arg(long)]
    pub target: String,
    /// Transport (r2p2: R2P2 over UDP, echo and synthetic protocols only).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// Application protocol.
    #[arg(long, value_enum, default_value_t = AppProto::Echo)]
    pub proto: AppProto,
    /// Connections per agent.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Outstanding requests per connection.
    #[arg(long, default_value_t = 8)]
    pub outstanding: usize,
    /// Inter-arrival distribution (ferrix-dist shape: exp = Poisson, det, uniform:spread=..,
    /// lognormal:sigma=.., gamma:k=.., pareto:alpha=..).
    #[arg(long, default_value = "exp")]
    pub arrival: String,
    /// Synthetic protocol: service-time distribution (ferrix-dist shape).
    #[arg(long, default_value = "det")]
    pub service: String,
    /// Synthetic protocol: mean service time in µs.
    #[arg(long, default_value_t = 10.0)]
    pub service_us: f64,
    /// Echo protocol: payload bytes.
    #[arg(long, default_value_t = 8)]
    pub echo_size: usize,
    /// Key-value protocols: key/value sizes: fixed (--key-size, --value-size), etc or usr
    /// (Facebook's pools, Atikoglu et al. SIGMETRICS 2012; see the README).
    #[arg(long, value_enum, default_value_t = KvSizes::Fixed)]
    pub kv_sizes: KvSizes,
    /// Key-value protocols (memcached, memcached-binary, redis): number of distinct keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Key-value protocols (memcached, memcached-binary, redis): key size in bytes (>= 8).
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Key-value protocols (memcached, memcached-binary, redis): value size in bytes for sets.
    #[arg(long, default_value_t = 64)]
    pub value_size: usize,
    /// Key-value protocols (memcached, memcached-binary, redis): fraction of requests that are gets (the rest are sets).
    #[arg(long, default_value_t = 0.9)]
    pub get_ratio: f64,
    /// http: path to GET.
    #[arg(long, default_value = "/")]
    pub http_path: String,
    /// Testing knob: send this many requests back to back per arrival (the inter-arrival check
    /// should flag anything above 1).
    #[arg(long, default_value_t = 1)]
    pub burst: u32,
    /// R2P2 transport: per-request timeout in ms (requests without a reply by then count as
    /// failed, not received).
    #[arg(long, default_value_t = 1000)]
    pub r2p2_timeout_ms: u64,
    /// Random seed (agent i uses a seed derived from it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Fixed load: total requests per second over all agents.
    #[arg(long, conflicts_with_all = ["sweep", "max_at_slo"])]
    pub load: Option<f64>,
    /// Step sweep: comma-separated loads (rps).
    #[arg(long, value_delimiter = ',')]
    pub sweep: Option<Vec<f64>>,
    /// Search the max load whose p<ci-percentile> meets this SLO (µs) between --lo and --hi.
    #[arg(long, value_name = "SLO_US")]
    pub max_at_slo: Option<f64>,
    /// max@SLO search: lowest load (rps).
    #[arg(long, default_value_t = 1000.0)]
    pub lo: f64,
    /// max@SLO search: highest load (rps).
    #[arg(long, default_value_t = 50_000.0)]
    pub hi: f64,
    /// max@SLO search: number of bisection steps.
    #[arg(long, default_value_t = 5)]
    pub steps: usize,

    /// Number of local agent processes to start [default: 1, or the number of --agent-kind
    /// entries] (not with --agents-file).
    #[arg(long, conflicts_with = "agents_file")]
    pub agents: Option<usize>,
    /// Kind of each local agent, comma-separated in order, or one kind for all: symmetric
    /// (load and latency), throughput (load only, no latency samples) or latency (a low fixed
    /// rate, one connection, one request in flight, busy-polling its socket). At least one
    /// agent must measure latency (symmetric or latency). Latency comes from those agents
    /// only; throughput is summed over all.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        conflicts_with = "agents_file"
    )]
    pub agent_kind: Vec<AgentKind>,
    /// File of remote agent control addresses, one `host:port [kind]` per line (kind as in
    /// --agent-kind, default symmetric; # comments).
    #[arg(long)]
    pub agents_file: Option<PathBuf>,
    /// Rate of each latency agent (requests/s) when throughput or symmetric agents carry the
    /// rest of the load (at most an equal share); with latency agents only, they share the
    /// load equally.
    #[arg(long, default_value_t = DEFAULT_LATENCY_AGENT_RPS)]
    pub latency_agent_rps: f64,
    /// SO_BUSY_POLL of latency agents' sockets in µs (0 leaves the socket default). Values
    /// above the sysctl net.core.busy_read need CAP_NET_ADMIN; each report says whether it was
    /// applied. Busy polling needs a NAPI device queue (not loopback).
    #[arg(long, default_value_t = DEFAULT_BUSY_POLL_US)]
    pub busy_poll_us: u32,
    /// Timestamps of latency samples: software (user-space clock around send() and recv()) or
    /// kernel (SO_TIMESTAMPING, TCP and UDP: NIC hardware stamps where the NIC is set up to
    /// stamp, else the kernel's software stamps; per sample, software when a kernel stamp did
    /// not arrive). Every report says which were used. R2P2 stays software.
    #[arg(long, value_enum, default_value_t = TsMode::Software)]
    pub timestamps: TsMode,
    /// Seconds to wait for any agent reply before declaring it failed.
    #[arg(long, default_value_t = 15.0)]
    pub agent_timeout_secs: f64,

    /// Percentiles to report.
    #[arg(long, value_delimiter = ',', default_value = "50,90,99")]
    pub percentiles: Vec<f64>,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Percentile whose interval width is checked (and compared to the SLO).
    #[arg(long, default_value_t = 99.0)]
    pub ci_percentile: f64,
    /// Target width of that interval in µs.
    #[arg(long, default_value_t = 10.0)]
    pub ci_width_us: f64,
    /// Relative target: the interval also passes when at most this fraction of the
    /// percentile's estimate wide (0 = the absolute --ci-width-us only, the thesis's rule).
    #[arg(long, default_value_t = 0.1)]
    pub ci_width_rel: f64,
    /// Allowed relative deviation of the achieved load.
    #[arg(long, default_value_t = 0.1)]
    pub load_tolerance: f64,
    /// Significance level of the Anderson-Darling inter-arrival test.
    #[arg(long, default_value_t = 0.01)]
    pub ad_alpha: f64,
    /// Latency samples per agent in the first round.
    #[arg(long, default_value_t = 10_000)]
    pub samples: usize,
    /// Initial sampling: measure one request in N.
    #[arg(long, default_value_t = 5)]
    pub sampling: u32,
    /// Samples added when stationarity or the CI fails.
    #[arg(long, default_value_t = 10_000)]
    pub more_samples: usize,
    /// Retries before a load point is declared inconclusive.
    #[arg(long, default_value_t = 5)]
    pub max_retries: usize,
    /// Largest lag of the Spearman autocorrelation.
    #[arg(long, default_value_t = 20)]
    pub max_lag: usize,
    /// Warm-up before the first load check (ms).
    #[arg(long, default_value_t = 500)]
    pub warmup_ms: u64,
    /// Time limit per load point (s).
    #[arg(long, default_value_t = 120.0)]
    pub max_secs: f64,
    /// A quick, labelled, non-certified number in a few seconds: at most 2,000 samples at 1:2
    /// or the given --samples/--sampling if smaller, 200 ms warm-up, one stability check and
    /// one measurement round, at most 10 s per load. Every check still runs and is reported;
    /// the result is never "conclusive".
    #[arg(long)]
    pub quick: bool,

    /// Write the full report as JSON to this file ('-' for stdout, replacing the table).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a summary CSV (one row per load and percentile).
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write every latency sample as CSV.
    #[arg(long)]
    pub samples_csv: Option<PathBuf>,
    /// Draw a PNG: latency CCDF per load and p<ci-percentile> vs load with its CI.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Add a qsim model curve to the p-vs-load plot (qsim model spec: mg-n-fcfs,
    /// partitioned-fcfs, mg-n-ps, jsq, jbsq:n=2, ...), simulated with the --service shape and
    /// --service-us mean at utilisation load × service-us / --model-workers.
    #[arg(long, value_name = "SPEC", requires = "plot")]
    pub model: Option<String>,
    /// Workers (server cores) of the model.
    #[arg(long, default_value_t = 1)]
    pub model_workers: usize,
    /// Fixed latency added to the model (µs): the network and stack the model leaves out.
    #[arg(long, default_value_t = 0.0)]
    pub model_offset_us: f64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    /// The kinds of the local agents to start, from --agents and --agent-kind.
    pub fn local_agent_kinds(&self) -> Result<Vec<AgentKind>, String> {
        let k = &self.agent_kind;
        let kinds = match (self.agents, k.len()) {
            (Some(0), _) => return Err("--agents must be at least 1".into()),
            (None, 0) => vec![AgentKind::Symmetric],
            (Some(n), 0) => vec![AgentKind::Symmetric; n],
            (None, _) => k.clone(),
            (Some(n), 1) => vec![k[0]; n],
            (Some(n), m) if n == m => k.clone(),
            (Some(n), m) => {
                return Err(format!(
                    "--agents {n} but {m} --agent-kind entries (give one kind, or one per agent)"
                ));
            }
        };
        require_latency_agent(&kinds)?;
        Ok(kinds)
    }

    /// The workload the flags describe.
    pub fn workload(&self) -> Workload {
        Workload {
            target: self.target.clone(),
            transport: self.transport,
            proto: self.proto,
            connections: self.connections,
            outstanding: self.outstanding,
            arrival: self.arrival.clone(),
            service: self.service.clone(),
            service_us: self.service_us,
            echo_size: self.echo_size,
            keys: self.keys,
            key_size: self.key_size,
            value_size: self.value_size,
            get_ratio: self.get_ratio,
            http_path: self.http_path.clone(),
            burst: self.burst,
            seed: self.seed,
            r2p2_timeout_ms: self.r2p2_timeout_ms,
            kv_sizes: self.kv_sizes,
        }
    }
}

/// At least one agent must measure latency.
pub fn require_latency_agent(kinds: &[AgentKind]) -> Result<(), String> {
    if kinds.iter().any(|k| k.measures_latency()) {
        Ok(())
    } else {
        Err("no agent measures latency: make at least one agent symmetric or latency".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentKind::*;

    fn kinds(args: &[&str]) -> Result<Vec<AgentKind>, String> {
        let mut v = vec!["lancet", "run", "--target", "127.0.0.1:1"];
        v.extend_from_slice(args);
        let Command::Run(r) = Cli::try_parse_from(v).map_err(|e| e.to_string())?.command else {
            panic!("not run")
        };
        r.local_agent_kinds()
    }

    #[test]
    fn local_agent_kinds_from_flags() {
        assert_eq!(kinds(&[]).unwrap(), vec![Symmetric]);
        assert_eq!(kinds(&["--agents", "2"]).unwrap(), vec![Symmetric; 2]);
        assert_eq!(
            kinds(&["--agent-kind", "throughput,latency"]).unwrap(),
            vec![Throughput, Latency]
        );
        assert_eq!(
            kinds(&["--agents", "3", "--agent-kind", "latency"]).unwrap(),
            vec![Latency; 3]
        );
        assert!(kinds(&["--agents", "3", "--agent-kind", "latency,symmetric"]).is_err());
        assert!(kinds(&["--agent-kind", "throughput"]).is_err());
        assert!(kinds(&["--agent-kind", "sideways"]).is_err());
        assert!(kinds(&["--agents", "0"]).is_err());
    }
}
