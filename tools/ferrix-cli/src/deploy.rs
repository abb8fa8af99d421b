//! `ferrix deploy TESTBED.toml`: an experiment across hosts (`deploy_config.rs` describes the
//! file). With `--local` the whole topology runs on this machine in a network namespace
//! (`deploy_local.rs`); without, on the testbed's hosts over OpenSSH ([`remote`]): images and
//! the `ferrix` binary are copied to each host, the VMs and Lancet agents started there, the
//! coordinator run here, the consoles copied back and everything stopped. `--dry-run` prints
//! what would run, and runs nothing.

use crate::deploy_config::{Host, Plan};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the command reaches the hosts.
#[derive(Clone, Debug)]
pub struct Remote {
    /// The ssh program (OpenSSH's `ssh`, or a wrapper).
    pub ssh: String,
    /// The scp program.
    pub scp: String,
    /// At most this many ssh/scp at once.
    pub parallel: usize,
}

/// The output files of `lancet run` in `results`, and the agents file.
pub fn lancet_outputs(results: &Path, agents: &Path) -> Vec<String> {
    vec![
        "--agents-file".into(),
        agents.to_string_lossy().into_owned(),
        "--json".into(),
        results.join("lancet.json").to_string_lossy().into_owned(),
        "--csv".into(),
        results.join("lancet.csv").to_string_lossy().into_owned(),
    ]
}

/// A fresh results directory for the plan: `<results>/<name>`, or `<name>-2`, `-3`, ...
fn results_dir(plan: &Plan, base: Option<&Path>) -> Result<PathBuf, String> {
    let base = base.map_or_else(|| plan.results.clone(), Path::to_path_buf);
    for i in 1..1000 {
        let dir = if i == 1 {
            base.join(&plan.name)
        } else {
            base.join(format!("{}-{i}", plan.name))
        };
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            return Ok(dir);
        }
    }
    Err(format!("{}: too many results directories", base.display()))
}

/// Runs `ferrix deploy`; returns the exit code: 0 when Lancet's measurement is conclusive,
/// 1 when it ran but did not pass its checks (a `--quick` look never does).
pub fn deploy(
    file: &Path,
    local: bool,
    dry_run: bool,
    results: Option<&Path>,
    remote: &Remote,
    out: &mut dyn Write,
) -> Result<i32, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let plan =
        crate::deploy_config::plan(&text, local).map_err(|e| format!("{}: {e}", file.display()))?;
    let ferrix = std::env::current_exe().map_err(|e| e.to_string())?;
    if dry_run {
        let dir = results.map_or_else(|| plan.results.join(&plan.name), Path::to_path_buf);
        for line in if local {
            local_lines(&plan, &dir)
        } else {
            remote_steps(&plan, &dir, remote, ("ferrix", &images_named(&plan)))
                .iter()
                .map(Step::line)
                .collect()
        } {
            let _ = writeln!(out, "{line}");
        }
        return Ok(0);
    }
    let dir = results_dir(&plan, results)?;
    std::fs::write(dir.join("testbed.toml"), &text).map_err(|e| e.to_string())?;
    let r = if local {
        crate::deploy_local::run(&plan, &ferrix, &dir, out)
    } else {
        run_remote(&plan, &ferrix, &dir, remote, out)
    };
    match r {
        Ok((dir, conclusive)) => {
            let _ = writeln!(out, "deploy: results in {}", dir.display());
            if conclusive {
                Ok(0)
            } else {
                let _ = writeln!(
                    out,
                    "deploy: Lancet's measurement is not conclusive (see its checks above)"
                );
                Ok(1)
            }
        }
        Err(e) => Err(format!("{e} (logs in {})", dir.display())),
    }
}

/// What `--local --dry-run` prints.
fn local_lines(plan: &Plan, dir: &Path) -> Vec<String> {
    let mut v = vec![format!(
        "namespace fxdeploy<pid>: bridge fxbr0 {}/{}",
        plan.local_ip.0, plan.local_ip.1
    )];
    for (i, vm) in plan.vms.iter().enumerate() {
        v.push(format!(
            "{}: ferrix run {} --vmm {} --cpus {} --net tap:fxtap{i} --mac {} -- {}  > {}",
            vm.name,
            vm.app,
            vm.vmm,
            vm.cpus,
            vm.mac,
            vm.kernel_args().join(" "),
            dir.join(format!("{}.log", vm.name)).display()
        ));
    }
    for a in &plan.agents {
        v.push(format!(
            "{}: ferrix lancet agent --listen 127.0.0.1:0",
            a.name
        ));
    }
    v.push(format!(
        "coordinator: ferrix lancet {}",
        plan.lancet.join(" ")
    ));
    v
}

/// The phases of the remote run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Prepare,
    Install,
    Images,
    StartVm,
    StartAgent,
    Coordinator,
    Collect,
    Stop,
}

/// One command of the remote run, and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub phase: Phase,
    pub what: String,
    pub argv: Vec<String>,
}

impl Step {
    fn line(&self) -> String {
        let quoted: Vec<String> = self.argv.iter().map(|a| shell_quote(a)).collect();
        format!("{}: {}", self.what, quoted.join(" "))
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.argv[0]);
        c.args(&self.argv[1..]);
        c
    }
}

/// `s` as one shell word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The local image file of each VM's app (built by `ferrix build` at run time; named by app
/// in a dry run).
fn images_named(plan: &Plan) -> Vec<PathBuf> {
    plan.vms.iter().map(|v| PathBuf::from(&v.app)).collect()
}

fn host<'a>(plan: &'a Plan, name: &str) -> Option<&'a Host> {
    plan.hosts.iter().find(|h| h.name == name)
}

/// The host part of an ssh destination (`user@host` -> `host`).
fn address_of(h: &Host) -> &str {
    h.ssh.rsplit_once('@').map_or(h.ssh.as_str(), |(_, a)| a)
}

/// The remote run's phases, each a list of independent commands (run `parallel` at a time):
/// prepare, copy, start VMs, start agents (the readiness waits and the coordinator run in
/// between, see [`run_remote`]).
fn remote_steps(
    plan: &Plan,
    dir: &Path,
    r: &Remote,
    (ferrix, images): (&str, &[PathBuf]),
) -> Vec<Step> {
    let ssh = |h: &Host, phase: Phase, what: String, cmd: String| Step {
        phase,
        what,
        argv: vec![
            r.ssh.clone(),
            "-o".into(),
            "BatchMode=yes".into(),
            h.ssh.clone(),
            cmd,
        ],
    };
    let mut steps = Vec::new();
    let used: Vec<&Host> = plan
        .hosts
        .iter()
        .filter(|h| {
            plan.vms.iter().any(|v| v.host == h.name)
                || plan.agents.iter().any(|a| a.host == h.name)
        })
        .collect();
    for h in &used {
        steps.push(ssh(
            h,
            Phase::Prepare,
            format!("prepare {}", h.name),
            format!("mkdir -p {}", shell_quote(&h.dir)),
        ));
        // The binary goes in as `ferrix` whatever it is called here; the images keep their
        // names.
        let mut argv = vec![r.scp.clone(), "-o".into(), "BatchMode=yes".into()];
        argv.push(ferrix.to_string());
        argv.push(format!("{}:{}/ferrix", h.ssh, h.dir));
        let mut files: Vec<String> = Vec::new();
        for (vm, img) in plan.vms.iter().zip(images) {
            let f = img.to_string_lossy().into_owned();
            if vm.host == h.name && !files.contains(&f) {
                files.push(f);
            }
        }
        steps.push(Step {
            phase: Phase::Install,
            what: format!("install ferrix on {}", h.name),
            argv,
        });
        if !files.is_empty() {
            let mut argv = vec![r.scp.clone(), "-o".into(), "BatchMode=yes".into()];
            argv.extend(files);
            argv.push(format!("{}:{}/", h.ssh, h.dir));
            steps.push(Step {
                phase: Phase::Images,
                what: format!("copy images to {}", h.name),
                argv,
            });
        }
    }
    for (vm, img) in plan.vms.iter().zip(images) {
        let Some(h) = host(plan, &vm.host) else {
            continue;
        };
        let image = img
            .file_name()
            .map_or_else(|| vm.app.clone(), |f| f.to_string_lossy().into_owned());
        let mut run = vec!["./ferrix".to_string()];
        run.extend(vm.run_args(&format!("./{image}"), vm.net.as_deref().unwrap_or_default()));
        let cmd = format!(
            "cd {} && nohup {} > {n}.log 2>&1 < /dev/null & echo $! > {}/{n}.pid",
            shell_quote(&h.dir),
            run.iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            shell_quote(&h.dir),
            n = vm.name
        );
        steps.push(ssh(h, Phase::StartVm, format!("start {}", vm.name), cmd));
    }
    for a in &plan.agents {
        let Some(h) = host(plan, &a.host) else {
            continue;
        };
        let listen = a.listen.clone().unwrap_or_else(|| "0.0.0.0:5001".into());
        let cmd = format!(
            "cd {d} && nohup ./ferrix lancet agent --listen {} > {n}.log 2>&1 < /dev/null & echo $! > {d}/{n}.pid",
            shell_quote(&listen),
            d = shell_quote(&h.dir),
            n = a.name
        );
        steps.push(ssh(h, Phase::StartAgent, format!("start {}", a.name), cmd));
    }
    let mut lancet = vec![ferrix.to_string(), "lancet".into()];
    lancet.extend(plan.lancet.iter().cloned());
    lancet.extend(lancet_outputs(dir, &dir.join("agents.txt")));
    steps.push(Step {
        phase: Phase::Coordinator,
        what: "coordinator".into(),
        argv: lancet,
    });
    for h in &used {
        steps.push(Step {
            phase: Phase::Collect,
            what: format!("collect from {}", h.name),
            argv: vec![
                r.scp.clone(),
                "-o".into(),
                "BatchMode=yes".into(),
                format!("{}:{}/*.log", h.ssh, h.dir),
                dir.join(&h.name).to_string_lossy().into_owned(),
            ],
        });
        steps.push(ssh(
            h,
            Phase::Stop,
            format!("stop on {}", h.name),
            format!(
                "cd {} && kill $(cat *.pid) 2>/dev/null; rm -f *.pid",
                shell_quote(&h.dir)
            ),
        ));
    }
    steps
}

/// The agents file of the remote run: each agent's host address and listening port.
fn agents_file(plan: &Plan) -> String {
    let mut s = String::new();
    for a in &plan.agents {
        let port = a
            .listen
            .as_deref()
            .and_then(|l| l.rsplit_once(':'))
            .map_or("5001", |(_, p)| p);
        if let Some(h) = host(plan, &a.host) {
            s.push_str(&format!("{}:{port} symmetric\n", address_of(h)));
        }
    }
    s
}

/// Runs `steps` at most `parallel` at a time; the first failure's message.
fn fan_out(steps: &[&Step], parallel: usize, out: &mut dyn Write) -> Result<(), String> {
    let mut failed = Vec::new();
    for batch in steps.chunks(parallel.max(1)) {
        let mut running = Vec::new();
        for s in batch {
            let _ = writeln!(out, "deploy: {}", s.what);
            let child = s
                .command()
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn();
            running.push((s, child));
        }
        for (s, child) in running {
            match child.and_then(std::process::Child::wait_with_output) {
                Ok(o) if o.status.success() => {}
                Ok(o) => failed.push(format!(
                    "{} failed ({}): {}",
                    s.what,
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )),
                Err(e) => failed.push(format!("{}: cannot run {}: {e}", s.what, s.argv[0])),
            }
        }
    }
    match failed.first() {
        None => Ok(()),
        Some(e) => Err(e.clone()),
    }
}

/// The remote run (see the module documentation).
fn run_remote(
    plan: &Plan,
    exe: &Path,
    dir: &Path,
    r: &Remote,
    out: &mut dyn Write,
) -> Result<(PathBuf, bool), String> {
    let mut images = Vec::new();
    for vm in &plan.vms {
        let p = Path::new(&vm.app);
        images.push(if p.is_file() {
            p.to_path_buf()
        } else {
            crate::build::build(&vm.app, true).map_err(|e| e.to_string())?
        });
    }
    let steps = remote_steps(plan, dir, r, (&exe.to_string_lossy(), &images));
    let phase = |p: Phase| -> Vec<&Step> { steps.iter().filter(|s| s.phase == p).collect() };
    let stop = phase(Phase::Stop);
    let result = (|| {
        for p in [
            Phase::Prepare,
            Phase::Install,
            Phase::Images,
            Phase::StartVm,
        ] {
            fan_out(&phase(p), r.parallel, out)?;
        }
        for vm in &plan.vms {
            let (Some(h), Some(ready)) = (host(plan, &vm.host), &vm.ready) else {
                continue;
            };
            let check = Step {
                phase: Phase::StartVm,
                what: format!("wait for {}", vm.name),
                argv: vec![
                    r.ssh.clone(),
                    "-o".into(),
                    "BatchMode=yes".into(),
                    h.ssh.clone(),
                    format!(
                        "grep -qF -- {} {}/{}.log",
                        shell_quote(ready),
                        shell_quote(&h.dir),
                        vm.name
                    ),
                ],
            };
            let end = Instant::now() + Duration::from_secs(300);
            while !check.command().output().is_ok_and(|o| o.status.success()) {
                if Instant::now() > end {
                    return Err(format!("{} on {} never printed '{ready}'", vm.name, h.name));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = writeln!(out, "deploy: {} up", vm.name);
        }
        fan_out(&phase(Phase::StartAgent), r.parallel, out)?;
        std::fs::write(dir.join("agents.txt"), agents_file(plan)).map_err(|e| e.to_string())?;
        let mut c = phase(Phase::Coordinator)
            .first()
            .ok_or("no coordinator step")?
            .command();
        let o = c.output().map_err(|e| e.to_string())?;
        std::fs::write(dir.join("lancet.txt"), &o.stdout).map_err(|e| e.to_string())?;
        let _ = out.write_all(&o.stdout);
        if !matches!(o.status.code(), Some(0 | 1)) {
            return Err(format!(
                "lancet failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        for h in &plan.hosts {
            let _ = std::fs::create_dir_all(dir.join(&h.name));
        }
        fan_out(&phase(Phase::Collect), r.parallel, out)?;
        Ok(o.status.code() == Some(0))
    })();
    // Stop everything whatever happened.
    let stopped = fan_out(&stop, r.parallel, out);
    let conclusive = result?;
    stopped.map(|()| (dir.to_path_buf(), conclusive))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REMOTE: &str = r#"
        [experiment]
        name = "jbsq"
        target = "router:8000"
        [lancet]
        loads = [1000]
        [[host]]
        name = "n1"
        ssh = "root@node1"
        [[host]]
        name = "n2"
        ssh = "node2"
        dir = "/srv/fx"
        [[role]]
        name = "router"
        host = "n1"
        app = "router"
        ip = "10.79.0.10/24"
        net = "tap:fx0"
        ready = "router: routing"
        [[role]]
        name = "s1"
        host = "n2"
        app = "synthetic"
        ip = "10.79.0.11/24"
        net = "tap:fx0"
        args = ["router=10.79.0.10:9000"]
        [[role]]
        name = "agent1"
        host = "n2"
        kind = "agent"
        listen = "0.0.0.0:6001"
    "#;

    #[test]
    fn the_remote_run_is_prepare_copy_start_coordinate_collect_stop() {
        let plan = crate::deploy_config::plan(REMOTE, false).unwrap();
        let r = Remote {
            ssh: "ssh".into(),
            scp: "scp".into(),
            parallel: 4,
        };
        let dir = Path::new("/res/jbsq");
        let steps = remote_steps(&plan, dir, &r, ("ferrix", &images_named(&plan)));
        let lines: Vec<String> = steps.iter().map(Step::line).collect();
        let whats: Vec<&str> = steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "prepare n1",
                "install ferrix on n1",
                "copy images to n1",
                "prepare n2",
                "install ferrix on n2",
                "copy images to n2",
                "start router",
                "start s1",
                "start agent1",
                "coordinator",
                "collect from n1",
                "stop on n1",
                "collect from n2",
                "stop on n2"
            ]
        );
        assert_eq!(
            lines[1],
            "install ferrix on n1: scp -o BatchMode=yes ferrix root@node1:/tmp/ferrix-deploy/ferrix"
        );
        assert_eq!(
            lines[2],
            "copy images to n1: scp -o BatchMode=yes router root@node1:/tmp/ferrix-deploy/"
        );
        assert!(
            lines[7].contains("node2 'cd /srv/fx && nohup ./ferrix run ./synthetic --vmm qemu --cpus 1 --net tap:fx0 --mac 52:54:00:fd:00:02 --timeout 0 --stats -- ferrix.ip=10.79.0.11/24 router=10.79.0.10:9000 > s1.log"),
            "{}",
            lines[7]
        );
        assert!(
            lines[8].contains("./ferrix lancet agent --listen 0.0.0.0:6001 > agent1.log"),
            "{}",
            lines[8]
        );
        assert!(
            lines[9].starts_with("coordinator: ferrix lancet run --target 10.79.0.10:8000 --transport r2p2 --proto synthetic --load 1000 --quick --agents-file /res/jbsq/agents.txt"),
            "{}",
            lines[9]
        );
        assert_eq!(agents_file(&plan), "node2:6001 symmetric\n");
        assert_eq!(shell_quote("a b'c"), r"'a b'\''c'");
        assert_eq!(shell_quote("x=1,2"), "x=1,2");
    }
}
