//! `p4sim`: run a v1model program over packets.
//!
//! `p4sim run PROGRAM [--entries FILE] (--pcap-in IN [--pcap-out OUT] | --hex-in IN)`: every
//! input packet enters on `--port` (default 0; with `--hex-in` a line may start `PORT:`),
//! recirculations re-enter at once (at most `--max-passes` per packet), and what leaves is
//! written to the pcap (ports are not recorded there) and printed as `PORT HEX` lines.
//! `p4sim check PROGRAM` only loads it. `p4sim p4runtime PROGRAM --entries FILE` prints the
//! entries as a P4Runtime WriteRequest in text format. `p4sim hub PROGRAM --entries FILE
//! --dir DIR --port N=MAC ...` is the switch of the VMs started with the shim's
//! `--net switch:DIR` (start it first; `p4sim::hub`). `p4sim slog CONFIG.toml` runs a SLOG
//! experiment (p4/slog.p4) against a simulated echo device (`control::slog_run`).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use p4sim::Switch;
use p4sim::control::ControlFile;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "p4sim", about = "interpreter for a P4_16 (v1model) subset")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Load a program and report errors.
    Check { program: PathBuf },
    /// Run packets through a program.
    Run {
        program: PathBuf,
        #[arg(long)]
        entries: Option<PathBuf>,
        #[arg(long)]
        pcap_in: Option<PathBuf>,
        #[arg(long)]
        pcap_out: Option<PathBuf>,
        /// Text input: one packet per line, hex bytes, optionally `PORT:` first.
        #[arg(long)]
        hex_in: Option<PathBuf>,
        #[arg(long, default_value_t = 0)]
        port: u16,
        #[arg(long, default_value_t = 1000)]
        max_passes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Be the switch of a shim `--net switch:DIR` segment (start it before the VMs).
    Hub {
        program: PathBuf,
        #[arg(long)]
        entries: Option<PathBuf>,
        /// The segment's directory (the VMs' `--net switch:DIR`).
        #[arg(long)]
        dir: PathBuf,
        /// Which VM is behind which port, by MAC: `N=52:54:00:12:34:56` (repeat).
        #[arg(long = "port", value_parser = parse_port)]
        ports: Vec<(u16, [u8; 6])>,
        #[arg(long, default_value_t = 100_000)]
        max_passes: usize,
        /// Exit after this long without a frame (once one came); default: run until killed.
        #[arg(long)]
        idle_exit_ms: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run a SLOG experiment (p4/slog.p4, a TOML file) against its simulated echo device.
    Slog {
        config: PathBuf,
        /// Also write the experiment's control file (JSON) here.
        #[arg(long)]
        entries_out: Option<PathBuf>,
    },
    /// Print the control file's entries as P4Runtime text.
    P4runtime {
        program: PathBuf,
        #[arg(long)]
        entries: PathBuf,
        #[arg(long, default_value_t = 1)]
        device_id: u64,
    },
}

fn parse_port(s: &str) -> Result<(u16, [u8; 6]), String> {
    let (n, m) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: want PORT=MAC"))?;
    let port: u16 = n
        .parse()
        .ok()
        .filter(|p| *p <= 510)
        .ok_or_else(|| format!("{n:?}: a port is 0..=510"))?;
    let bytes: Vec<u8> = m
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{m:?}: not a MAC (aa:bb:cc:dd:ee:ff)"))?;
    let mac: [u8; 6] = bytes
        .try_into()
        .map_err(|_| format!("{m:?}: not a MAC (six bytes)"))?;
    Ok((port, mac))
}

fn read(p: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn load(program: &PathBuf, entries: Option<&PathBuf>, seed: u64) -> Result<Switch, String> {
    let mut sw =
        Switch::load(&read(program)?, seed).map_err(|e| format!("{}:{e}", program.display()))?;
    if let Some(f) = entries {
        let cf = ControlFile::from_json(&read(f)?).map_err(|e| format!("{}: {e}", f.display()))?;
        cf.install(&mut sw)
            .map_err(|e| format!("{}: {e}", f.display()))?;
    }
    Ok(sw)
}

fn hex_packets(text: &str, default_port: u16) -> Result<Vec<(u16, Vec<u8>)>, String> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (port, hex) = match line.split_once(':') {
            Some((p, h)) => (
                p.trim()
                    .parse()
                    .map_err(|_| format!("line {}: bad port", n + 1))?,
                h,
            ),
            None => (default_port, line),
        };
        let digits: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return Err(format!("line {}: odd number of hex digits", n + 1));
        }
        let bytes = (0..digits.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| format!("line {}: not hex", n + 1))?;
        out.push((port, bytes));
    }
    Ok(out)
}

fn pcap_packets(p: &PathBuf, port: u16) -> Result<Vec<(u16, Vec<u8>, u64)>, String> {
    let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut r = pcap_file::pcap::PcapReader::new(f).map_err(|e| format!("{}: {e}", p.display()))?;
    let mut out = vec![];
    while let Some(pkt) = r.next_packet() {
        let pkt = pkt.map_err(|e| format!("{}: {e}", p.display()))?;
        out.push((port, pkt.data.to_vec(), pkt.timestamp.as_nanos() as u64));
    }
    Ok(out)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Check { program } => {
            let sw = load(&program, None, 0)?;
            println!(
                "{}: ok ({} tables, {} actions, {} registers, {} parser states)",
                program.display(),
                sw.prog.tables.len(),
                sw.prog.actions.len(),
                sw.prog.registers.len(),
                sw.prog.states.len()
            );
        }
        Cmd::Hub {
            program,
            entries,
            dir,
            ports,
            max_passes,
            idle_exit_ms,
            seed,
        } => {
            let sw = load(&program, entries.as_ref(), seed)?;
            let by_mac: Vec<([u8; 6], u16)> = ports.iter().map(|&(p, m)| (m, p)).collect();
            let mut hub = p4sim::hub::Hub::new(&dir, sw, &by_mac)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            hub.set_max_passes(max_passes);
            eprintln!(
                "p4sim hub: {} on {} ({} ports): ready",
                program.display(),
                hub.path().display(),
                ports.len()
            );
            let idle = idle_exit_ms.map(std::time::Duration::from_millis);
            let (mut last, mut heard) = (std::time::Instant::now(), false);
            loop {
                let got = hub
                    .poll(std::time::Duration::from_millis(10))
                    .map_err(|e| format!("{}: {e}", hub.path().display()))?;
                if got > 0 {
                    (last, heard) = (std::time::Instant::now(), true);
                }
                if idle.is_some_and(|d| heard && last.elapsed() > d) {
                    break;
                }
            }
            eprintln!("p4sim hub: {:?}", hub.stats());
            let s = &hub.switch().stats;
            eprintln!(
                "p4sim hub: in {} passes {} tx {} dropped {} recirculated {} parser errors {}",
                s.injected, s.passes, s.tx, s.dropped, s.recirculated, s.parser_errors
            );
        }
        Cmd::Slog {
            config,
            entries_out,
        } => slog(&config, entries_out.as_ref())?,
        Cmd::P4runtime {
            program,
            entries,
            device_id,
        } => {
            let sw = load(&program, None, 0)?;
            let cf = ControlFile::from_json(&read(&entries)?).map_err(|e| e.to_string())?;
            print!(
                "{}",
                cf.p4runtime_text(&sw.prog, device_id)
                    .map_err(|e| e.to_string())?
            );
        }
        Cmd::Run {
            program,
            entries,
            pcap_in,
            pcap_out,
            hex_in,
            port,
            max_passes,
            seed,
        } => {
            let mut sw = load(&program, entries.as_ref(), seed)?;
            let input: Vec<(u16, Vec<u8>, u64)> = match (&pcap_in, &hex_in) {
                (Some(p), None) => pcap_packets(p, port)?,
                (None, Some(h)) => hex_packets(&read(h)?, port)?
                    .into_iter()
                    .enumerate()
                    .map(|(i, (p, b))| (p, b, i as u64 * 1000))
                    .collect(),
                _ => return Err("give one of --pcap-in or --hex-in".into()),
            };
            let mut writer = match &pcap_out {
                Some(p) => {
                    let f =
                        std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?;
                    Some(pcap_file::pcap::PcapWriter::new(f).map_err(|e| e.to_string())?)
                }
                None => None,
            };
            for (i, (p, bytes, t)) in input.iter().enumerate() {
                let tx = sw
                    .run(*p, bytes, *t, max_passes)
                    .map_err(|e| format!("packet {}: {e}", i + 1))?;
                for (op, b) in tx {
                    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                    println!("{op} {hex}");
                    if let Some(w) = writer.as_mut() {
                        let pkt = pcap_file::pcap::PcapPacket::new(
                            std::time::Duration::from_nanos(*t),
                            b.len() as u32,
                            &b,
                        );
                        w.write_packet(&pkt).map_err(|e| e.to_string())?;
                    }
                }
            }
            let s = &sw.stats;
            eprintln!(
                "in {} passes {} tx {} dropped {} recirculated {} parser errors {}",
                s.injected, s.passes, s.tx, s.dropped, s.recirculated, s.parser_errors
            );
        }
    }
    Ok(())
}

fn slog(config: &PathBuf, entries_out: Option<&PathBuf>) -> Result<(), String> {
    use p4sim::control::slog::SlogConfig;
    let cfg =
        SlogConfig::from_toml(&read(config)?).map_err(|e| format!("{}: {e}", config.display()))?;
    let plan = cfg
        .plan()
        .map_err(|e| format!("{}: {e}", config.display()))?;
    if let Some(out) = entries_out {
        std::fs::write(out, plan.control_file().to_json())
            .map_err(|e| format!("{}: {e}", out.display()))?;
    }
    println!(
        "slog: {} slots of {} ns, {:.6} requests per slot ({} draws of 2^32 per target), {} targets",
        plan.slots,
        plan.slot_ns,
        plan.p_exact(),
        plan.per_target,
        plan.targets.len()
    );
    let ex = p4sim::control::slog_run::run_with_dut(&cfg)?;
    let c = ex.counters();
    println!(
        "slots {} sent {} dropped {} received {} unbucketed {} other {} (sent per target {:?})",
        c.slots, c.sent, c.dropped, c.received, c.unbucketed, c.other, c.sent_to
    );
    let secs = (plan.slots * plan.slot_ns) as f64 / 1e9;
    println!(
        "rate {:.0} requests/s (configured {})",
        c.sent as f64 / secs,
        cfg.rate_pps
    );
    print!("{}", ex.histogram().report());
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p4sim: {e}");
            ExitCode::FAILURE
        }
    }
}
