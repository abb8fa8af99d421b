//! `ferrix deploy`'s testbed file (TOML) and the plan checked out of it: which VMs boot where
//! with what, which Lancet agents run where, and the coordinator's command line.
//!
//! ```toml
//! [experiment]
//! name = "jbsq"                 # results go to <results>/<name>/ (a suffix if it exists)
//! results = "results"           # default "results"
//! target = "router:8000"        # the role and UDP/TCP port the load goes to
//! local_ip = "10.79.0.1/24"     # --local: the bridge's address (default: .1 of the first VM's network)
//!
//! [lancet]                      # `lancet run` options (defaults shown)
//! transport = "r2p2"
//! proto = "synthetic"
//! service_us = 10.0             # synthetic only
//! loads = [2000]                # one load, or a sweep
//! quick = true                  # a labelled quick number, or the full certified run
//! args = []                     # any further `lancet run` flags
//!
//! [[host]]                      # remote hosts (not needed with --local)
//! name = "node1"
//! ssh = "root@node1.example"    # an OpenSSH destination
//! dir = "/tmp/ferrix-deploy"    # working directory there (default)
//!
//! [[role]]
//! name = "router"
//! host = "node1"                # default "local"
//! kind = "vm"                   # vm (default) or agent
//! app = "router"                # an app under apps/, or an image path
//! ip = "10.79.0.10/24"          # its ferrix.ip=
//! mac = "52:54:00:79:00:10"     # default 52:54:00:fd:00:<index>
//! vmm = "qemu"                  # or "shim"
//! cpus = 1
//! args = ["policy=jbsq:1"]      # more kernel arguments
//! ready = "router: routing"     # the console line that says it is up
//! net = "tap:fx0"               # remote: its `ferrix run --net` (with --local: a TAP of the bridge)
//!
//! [[role]]
//! name = "agent1"
//! kind = "agent"
//! listen = "0.0.0.0:5001"       # remote: the agent's control address (--local: loopback, any port)
//! ```

use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    experiment: Experiment,
    #[serde(default)]
    lancet: LancetFile,
    #[serde(default)]
    host: Vec<HostFile>,
    #[serde(default)]
    role: Vec<RoleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Experiment {
    name: String,
    results: Option<PathBuf>,
    target: String,
    local_ip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LancetFile {
    #[serde(default = "default_transport")]
    transport: String,
    #[serde(default = "default_proto")]
    proto: String,
    service_us: Option<f64>,
    #[serde(default)]
    loads: Vec<u64>,
    #[serde(default = "yes")]
    quick: bool,
    #[serde(default)]
    args: Vec<String>,
}

impl Default for LancetFile {
    fn default() -> LancetFile {
        LancetFile {
            transport: default_transport(),
            proto: default_proto(),
            service_us: None,
            loads: Vec::new(),
            quick: true,
            args: Vec::new(),
        }
    }
}

fn default_transport() -> String {
    "r2p2".into()
}
fn default_proto() -> String {
    "synthetic".into()
}
fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    name: String,
    ssh: String,
    dir: Option<String>,
}

#[derive(Debug, Deserialize, Default, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    Vm,
    Agent,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    name: String,
    #[serde(default = "local")]
    host: String,
    #[serde(default)]
    kind: Kind,
    app: Option<String>,
    ip: Option<String>,
    mac: Option<String>,
    vmm: Option<String>,
    cpus: Option<u32>,
    #[serde(default)]
    args: Vec<String>,
    ready: Option<String>,
    net: Option<String>,
    listen: Option<String>,
}

fn local() -> String {
    "local".into()
}

/// A remote host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    /// The OpenSSH destination.
    pub ssh: String,
    /// The working directory there.
    pub dir: String,
}

/// A VM to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmPlan {
    pub name: String,
    pub host: String,
    pub app: String,
    /// Address and prefix length.
    pub ip: (Ipv4Addr, u8),
    pub mac: String,
    pub vmm: String,
    pub cpus: u32,
    pub args: Vec<String>,
    pub ready: Option<String>,
    pub net: Option<String>,
}

impl VmPlan {
    /// The kernel arguments: its address, then the role's.
    pub fn kernel_args(&self) -> Vec<String> {
        let mut a = vec![format!("ferrix.ip={}/{}", self.ip.0, self.ip.1)];
        a.extend(self.args.iter().cloned());
        a
    }

    /// `ferrix` arguments that boot it from `image` on network `net` until stopped.
    pub fn run_args(&self, image: &str, net: &str) -> Vec<String> {
        let mut a: Vec<String> = [
            "run",
            image,
            "--vmm",
            &self.vmm,
            "--cpus",
            &self.cpus.to_string(),
            "--net",
            net,
            "--mac",
            &self.mac,
            "--timeout",
            "0",
            "--stats",
            "--",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(self.kernel_args());
        a
    }
}

/// A Lancet agent to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPlan {
    pub name: String,
    pub host: String,
    pub listen: Option<String>,
}

/// What `ferrix deploy` does, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub results: PathBuf,
    pub hosts: Vec<Host>,
    pub vms: Vec<VmPlan>,
    pub agents: Vec<AgentPlan>,
    pub target: SocketAddrV4,
    /// `lancet run` arguments without the agents file and the output files.
    pub lancet: Vec<String>,
    /// --local: the bridge's address.
    pub local_ip: (Ipv4Addr, u8),
}

fn parse_cidr(what: &str, s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{what}: {s}: want A.B.C.D/N"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{what}: {s}: not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (1..=30).contains(l))
        .ok_or_else(|| format!("{what}: {s}: prefix length 1..30"))?;
    Ok((ip, len))
}

fn network(ip: Ipv4Addr, len: u8) -> u32 {
    u32::from(ip) & (u32::MAX << (32 - u32::from(len)))
}

/// Parses and checks a testbed file; `local`: for `--local` (remote hosts are then not
/// needed, and every VM must share the bridge's network).
pub fn plan(text: &str, local: bool) -> Result<Plan, String> {
    let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut names = BTreeSet::new();
    for n in f
        .role
        .iter()
        .map(|r| &r.name)
        .chain(f.host.iter().map(|h| &h.name))
    {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!("name '{n}': letters, digits, - and _ only"));
        }
        if !names.insert(n.clone()) {
            return Err(format!("name '{n}' is used twice"));
        }
    }
    let hosts: Vec<Host> = f
        .host
        .iter()
        .map(|h| Host {
            name: h.name.clone(),
            ssh: h.ssh.clone(),
            dir: h.dir.clone().unwrap_or_else(|| "/tmp/ferrix-deploy".into()),
        })
        .collect();
    let mut vms = Vec::new();
    let mut agents = Vec::new();
    for (i, r) in f.role.iter().enumerate() {
        let known = r.host == "local" || hosts.iter().any(|h| h.name == r.host);
        if !local && !known {
            return Err(format!("role {}: no [[host]] named '{}'", r.name, r.host));
        }
        if !local && r.host == "local" {
            return Err(format!(
                "role {}: host 'local' needs --local (or name a [[host]])",
                r.name
            ));
        }
        match r.kind {
            Kind::Agent => {
                if r.app.is_some() || r.ip.is_some() || !r.args.is_empty() {
                    return Err(format!(
                        "role {}: an agent takes no app, ip or args",
                        r.name
                    ));
                }
                agents.push(AgentPlan {
                    name: r.name.clone(),
                    host: r.host.clone(),
                    listen: r.listen.clone(),
                });
            }
            Kind::Vm => {
                let app = r
                    .app
                    .clone()
                    .ok_or_else(|| format!("role {}: a VM needs app = \"...\"", r.name))?;
                let ip = parse_cidr(
                    &format!("role {}: ip", r.name),
                    r.ip.as_deref()
                        .ok_or_else(|| format!("role {}: a VM needs ip = \"A.B.C.D/N\"", r.name))?,
                )?;
                let vmm = r.vmm.clone().unwrap_or_else(|| "qemu".into());
                if vmm != "qemu" && vmm != "shim" {
                    return Err(format!("role {}: vmm '{vmm}': qemu or shim", r.name));
                }
                let cpus = r.cpus.unwrap_or(1);
                if !(1..=64).contains(&cpus) {
                    return Err(format!("role {}: cpus {cpus}: 1..64", r.name));
                }
                if !local && r.net.is_none() {
                    return Err(format!(
                        "role {}: a remote VM needs net = \"...\" (its ferrix run --net)",
                        r.name
                    ));
                }
                vms.push(VmPlan {
                    name: r.name.clone(),
                    host: r.host.clone(),
                    app,
                    ip,
                    mac: r
                        .mac
                        .clone()
                        .unwrap_or_else(|| format!("52:54:00:fd:00:{:02x}", i + 1)),
                    vmm,
                    cpus,
                    args: r.args.clone(),
                    ready: r.ready.clone(),
                    net: r.net.clone(),
                });
            }
        }
    }
    if agents.is_empty() {
        return Err("no Lancet agent: add a [[role]] with kind = \"agent\"".into());
    }
    let (tname, tport) = f
        .experiment
        .target
        .split_once(':')
        .ok_or("experiment.target: want ROLE:PORT")?;
    let tport: u16 = tport
        .parse()
        .map_err(|_| format!("experiment.target: port '{tport}'"))?;
    let tvm = vms
        .iter()
        .find(|v| v.name == tname)
        .ok_or_else(|| format!("experiment.target: no VM role named '{tname}'"))?;
    let target = SocketAddrV4::new(tvm.ip.0, tport);
    let first = vms.first().ok_or("no VM role")?;
    let local_ip = match &f.experiment.local_ip {
        Some(s) => parse_cidr("experiment.local_ip", s)?,
        None => (
            Ipv4Addr::from(network(first.ip.0, first.ip.1) | 1),
            first.ip.1,
        ),
    };
    if local {
        for v in &vms {
            if network(v.ip.0, local_ip.1) != network(local_ip.0, local_ip.1) {
                return Err(format!(
                    "role {}: {} is not on the bridge's network {}/{}",
                    v.name, v.ip.0, local_ip.0, local_ip.1
                ));
            }
            if v.ip.0 == local_ip.0 {
                return Err(format!(
                    "role {}: {} is the bridge's own address",
                    v.name, v.ip.0
                ));
            }
        }
    }
    let mut ips = BTreeSet::new();
    if let Some(v) = vms.iter().find(|v| !ips.insert(v.ip.0)) {
        return Err(format!("role {}: address {} is used twice", v.name, v.ip.0));
    }
    let l = &f.lancet;
    let mut lancet = vec![
        "run".to_string(),
        "--target".into(),
        target.to_string(),
        "--transport".into(),
        l.transport.clone(),
        "--proto".into(),
        l.proto.clone(),
    ];
    if let Some(s) = l.service_us {
        lancet.extend(["--service-us".into(), s.to_string()]);
    }
    match l.loads.as_slice() {
        [] => return Err("lancet.loads: at least one load (requests/s)".into()),
        [one] => lancet.extend(["--load".into(), one.to_string()]),
        many => lancet.extend([
            "--sweep".into(),
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ]),
    }
    if l.quick {
        lancet.push("--quick".into());
    }
    lancet.extend(l.args.iter().cloned());
    Ok(Plan {
        name: f.experiment.name.clone(),
        results: f
            .experiment
            .results
            .clone()
            .unwrap_or_else(|| PathBuf::from("results")),
        hosts,
        vms,
        agents,
        target,
        lancet,
        local_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [experiment]
        name = "jbsq"
        target = "router:8000"
        [lancet]
        service_us = 20.0
        loads = [100, 200]
        [[role]]
        name = "router"
        app = "router"
        ip = "10.79.0.10/24"
        args = ["policy=jbsq:1"]
        ready = "router: routing"
        [[role]]
        name = "s1"
        app = "synthetic"
        ip = "10.79.0.11/24"
        [[role]]
        name = "a1"
        kind = "agent"
    "#;

    #[test]
    fn a_local_testbed_becomes_a_plan() {
        let p = plan(GOOD, true).unwrap();
        assert_eq!(p.vms.len(), 2);
        assert_eq!(p.agents.len(), 1);
        assert_eq!(p.target, "10.79.0.10:8000".parse().unwrap());
        assert_eq!(p.local_ip, (Ipv4Addr::new(10, 79, 0, 1), 24));
        assert_eq!(p.vms[1].mac, "52:54:00:fd:00:02");
        assert_eq!(
            p.vms[0].kernel_args(),
            ["ferrix.ip=10.79.0.10/24", "policy=jbsq:1"]
        );
        assert_eq!(
            p.lancet.join(" "),
            "run --target 10.79.0.10:8000 --transport r2p2 --proto synthetic --service-us 20 --sweep 100,200 --quick"
        );
    }

    #[test]
    fn bad_testbeds_are_refused_with_a_reason() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "name = \"s1\"\n        app",
                "name = \"router\"\n        app",
                "used twice",
            ),
            (
                "target = \"router:8000\"",
                "target = \"nobody:8000\"",
                "no VM role named",
            ),
            (
                "target = \"router:8000\"",
                "target = \"router\"",
                "ROLE:PORT",
            ),
            (
                "10.79.0.11/24",
                "10.80.0.11/24",
                "not on the bridge's network",
            ),
            ("10.79.0.11/24", "10.79.0.10/24", "used twice"),
            ("10.79.0.11/24", "10.79.0.11", "want A.B.C.D/N"),
            ("loads = [100, 200]", "loads = []", "at least one load"),
            ("kind = \"agent\"", "kind = \"vm\"", "needs app"),
            ("kind = \"agent\"", "kind = \"robot\"", "unknown variant"),
            (
                "ready = \"router: routing\"",
                "colour = \"red\"",
                "unknown field",
            ),
        ];
        for (from, to, why) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let e = plan(&text, true).unwrap_err();
            assert!(e.contains(why), "{to}: {e}");
        }
        // Remote: every role needs a host with ssh, and a VM its backend.
        let e = plan(GOOD, false).unwrap_err();
        assert!(e.contains("needs --local"), "{e}");
    }

    #[test]
    fn a_remote_testbed_names_hosts_and_backends() {
        let text = GOOD
            .replace("[[role]]", "[[role]]\n        host = \"n1\"")
            .replace("ready = \"router: routing\"", "net = \"tap:fx0\"")
            .replace(
                "ip = \"10.79.0.11/24\"",
                "ip = \"10.79.0.11/24\"\n        net = \"tap:fx0\"",
            )
            + "\n        [[host]]\n        name = \"n1\"\n        ssh = \"root@n1\"\n";
        let p = plan(&text, false).unwrap();
        assert_eq!(p.hosts[0].dir, "/tmp/ferrix-deploy");
        assert!(p.vms.iter().all(|v| v.net.as_deref() == Some("tap:fx0")));
        let no_net = text.replacen("net = \"tap:fx0\"", "", 1);
        assert!(plan(&no_net, false).unwrap_err().contains("needs net"));
    }
}
