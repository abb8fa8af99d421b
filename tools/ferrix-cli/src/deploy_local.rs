//! `ferrix deploy --local`: the testbed's topology on this machine, in a network namespace of
//! its own: a bridge with the testbed's network (the coordinator and the agents use its
//! address), one TAP port per VM, the VMs under `ferrix run`, the Lancet agents and the
//! coordinator as `ferrix lancet`. Consoles and Lancet's report land in the results
//! directory; everything is stopped and the namespace removed at the end, also on failure.

use crate::deploy_config::Plan;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a VM may take to print its ready line (QEMU TCG boots in seconds; a loaded
/// machine is slower).
const READY_WITHIN: Duration = Duration::from_secs(300);
/// How long the coordinator may run.
const LANCET_WITHIN: Duration = Duration::from_secs(900);

/// The namespace and the processes in it; torn down when dropped.
struct Site {
    ns: String,
    children: Vec<(String, Child)>,
}

impl Site {
    fn create(ns: &str) -> Result<Site, String> {
        let site = Site {
            ns: ns.to_string(),
            children: Vec::new(),
        };
        let out = Command::new("ip")
            .args(["netns", "add", ns])
            .output()
            .map_err(|e| format!("cannot run ip: {e} (iproute2 is needed)"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot create network namespace {ns} (--local needs root): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        site.ip(&["link", "set", "lo", "up"])?;
        Ok(site)
    }

    /// `ip ARGS` inside the namespace.
    fn ip(&self, args: &[&str]) -> Result<(), String> {
        crate::bench_udp::ip(&[&["-n", self.ns.as_str()], args].concat())
    }

    /// A command run inside the namespace.
    fn exec(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).args(argv);
        c
    }

    /// Starts `argv` in the namespace with stdout and stderr to `log`.
    fn spawn(&mut self, name: &str, argv: &[String], log: &Path) -> Result<(), String> {
        let out = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let child = self
            .exec(&argv)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// Whether child `name` is still running.
    fn alive(&mut self, name: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

/// Waits until `log` contains `needle` while `name` runs; the log's text either way.
fn wait_for_line(site: &mut Site, name: &str, log: &Path, needle: &str) -> Result<String, String> {
    let end = Instant::now() + READY_WITHIN;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        let alive = site.alive(name);
        if !alive || Instant::now() > end {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            let why = if alive { "timed out" } else { "it exited" };
            return Err(format!("{name} never printed '{needle}' ({why}):\n{tail}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the plan; returns the results directory and whether Lancet's measurement was
/// conclusive (its exit code 0; 1 is a measurement that did not pass its checks).
pub fn run(
    plan: &Plan,
    ferrix: &Path,
    results: &Path,
    out: &mut dyn std::io::Write,
) -> Result<(PathBuf, bool), String> {
    let ns = format!("fxdeploy{}", std::process::id());
    let mut site = Site::create(&ns)?;
    let bridge = "fxbr0";
    site.ip(&["link", "add", bridge, "type", "bridge"])?;
    let cidr = format!("{}/{}", plan.local_ip.0, plan.local_ip.1);
    site.ip(&["addr", "add", &cidr, "dev", bridge])?;
    site.ip(&["link", "set", bridge, "up"])?;
    let exe = ferrix.to_string_lossy().into_owned();
    for (i, vm) in plan.vms.iter().enumerate() {
        let tap = format!("fxtap{i}");
        site.ip(&["tuntap", "add", "dev", &tap, "mode", "tap"])?;
        site.ip(&["link", "set", &tap, "master", bridge])?;
        site.ip(&["link", "set", &tap, "up"])?;
        let mut argv = vec![exe.clone()];
        argv.extend(vm.run_args(&vm.app, &format!("tap:{tap}")));
        let log = results.join(format!("{}.log", vm.name));
        let _ = writeln!(
            out,
            "deploy: {} ({} on {}) booting",
            vm.name, vm.app, vm.vmm
        );
        site.spawn(&vm.name, &argv, &log)?;
    }
    for vm in &plan.vms {
        let log = results.join(format!("{}.log", vm.name));
        if let Some(ready) = &vm.ready {
            wait_for_line(&mut site, &vm.name, &log, ready)?;
        }
        let ip = vm.ip.0.to_string();
        let ping = site
            .exec(&["ping", "-c", "1", "-i", "0.2", "-w", "120", &ip])
            .output()
            .map_err(|e| e.to_string())?;
        if !ping.status.success() {
            return Err(format!("{} ({ip}) never answered ping", vm.name));
        }
        let _ = writeln!(out, "deploy: {} up at {ip}", vm.name);
    }
    // The agents: their control addresses from the banner each prints first.
    let mut agents_file = String::new();
    for a in &plan.agents {
        let log = results.join(format!("{}.log", a.name));
        let argv = [
            exe.clone(),
            "lancet".into(),
            "agent".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ];
        site.spawn(&a.name, &argv, &log)?;
        let text = wait_for_line(&mut site, &a.name, &log, "\n")?;
        let addr = text
            .lines()
            .find_map(|l| l.strip_prefix(lancet::launch::LISTEN_BANNER))
            .ok_or_else(|| format!("{}: no listening line: {text}", a.name))?;
        agents_file.push_str(&format!("{addr} symmetric\n"));
        let _ = writeln!(out, "deploy: agent {} at {addr}", a.name);
    }
    let agents_path = results.join("agents.txt");
    std::fs::write(&agents_path, &agents_file).map_err(|e| e.to_string())?;
    let mut argv: Vec<String> = vec![exe.clone(), "lancet".into()];
    argv.extend(plan.lancet.iter().cloned());
    argv.extend(crate::deploy::lancet_outputs(results, &agents_path));
    let _ = writeln!(out, "deploy: lancet {}", plan.lancet.join(" "));
    let log = results.join("lancet.txt");
    site.spawn("lancet", &argv, &log)?;
    let end = Instant::now() + LANCET_WITHIN;
    let status = loop {
        if let Some((_, c)) = site.children.iter_mut().find(|(n, _)| n == "lancet")
            && let Ok(Some(s)) = c.try_wait()
        {
            break s;
        }
        if Instant::now() > end {
            return Err("lancet did not finish in time".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let report = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = write!(out, "{report}");
    if !matches!(status.code(), Some(0 | 1)) {
        return Err(format!("lancet failed ({status})"));
    }
    // Stop the VMs now and keep the logs.
    drop(site);
    Ok((results.to_path_buf(), status.code() == Some(0)))
}
