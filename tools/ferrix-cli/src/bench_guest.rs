//! A benchmark's guest: an app booted under QEMU's user network with one UDP or TCP port
//! forwarded from 127.0.0.1, waited for until it prints its banner, and joined when it has
//! exited. Used by `bench udp-echo`, `bench r2p2` and `bench sched`.

use crate::bench::Capture;
use crate::bench_udp::free_port;
use crate::error::CliError;
use crate::netspec::{Forward, NetSpec};
use crate::run::{Accel, RunOptions, RunResult, Vmm, run_with_qemu};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What to boot for a benchmark.
pub(crate) struct GuestSpec<'a> {
    pub image: &'a Path,
    pub qemu: &'a str,
    pub cpus: u32,
    /// Boot under the `microvm-icount` profile (a guest ns is one instruction).
    pub icount: bool,
    /// Forward TCP (else UDP) to `guest_port`.
    pub tcp: bool,
    pub guest_port: u16,
    /// Also forward a free host UDP port to this guest UDP port (`GuestVm::udp_port`).
    pub udp_port: Option<u16>,
    /// App arguments (after the network configuration).
    pub args: Vec<String>,
    /// Printed by the guest once it serves.
    pub banner: &'a str,
}

/// A free TCP port on 127.0.0.1 (for a forward or a Linux server the bench starts).
pub(crate) fn free_tcp_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running benchmark guest.
pub(crate) struct GuestVm {
    /// The host port (on 127.0.0.1) forwarded to the guest.
    pub port: u16,
    /// The host UDP port forwarded to `GuestSpec::udp_port`.
    pub udp_port: Option<u16>,
    console: Capture,
    vm: JoinHandle<Result<RunResult, CliError>>,
}

impl GuestVm {
    /// Boots `image` (one vCPU; `icount`: the `microvm-icount` profile) as 10.0.2.15 with
    /// `exit-after=N`, forwards a free host port to UDP `guest_port`, and waits (60 s at most)
    /// until the console shows `banner`.
    pub fn start(
        image: &Path,
        qemu: &str,
        icount: bool,
        guest_port: u16,
        exit_after: u32,
        banner: &str,
    ) -> Result<GuestVm, String> {
        GuestVm::boot(&GuestSpec {
            image,
            qemu,
            cpus: 1,
            icount,
            tcp: false,
            guest_port,
            udp_port: None,
            args: vec![format!("exit-after={exit_after}")],
            banner,
        })
    }

    /// Boots a guest as `spec` says (as 10.0.2.15, gateway 10.0.2.2, plus `spec.args`).
    pub fn boot(spec: &GuestSpec<'_>) -> Result<GuestVm, String> {
        let port = if spec.tcp {
            free_tcp_port()
        } else {
            free_port()
        }
        .map_err(|e| e.to_string())?;
        let mut forwards = vec![Forward {
            udp: !spec.tcp,
            host: port,
            guest: spec.guest_port,
        }];
        let udp_port = match spec.udp_port {
            Some(guest) => {
                let host = free_port().map_err(|e| e.to_string())?;
                forwards.push(Forward {
                    udp: true,
                    host,
                    guest,
                });
                Some(host)
            }
            None => None,
        };
        let mut args: Vec<String> =
            vec!["ferrix.ip=10.0.2.15/24".into(), "ferrix.gw=10.0.2.2".into()];
        args.extend(spec.args.iter().cloned());
        let opts = RunOptions {
            target: spec.image.to_string_lossy().into_owned(),
            vmm: Vmm::Qemu,
            cpus: spec.cpus,
            timeout: Some(Duration::from_secs(1800)),
            accel: Accel::Tcg,
            profile: spec.icount.then(|| "microvm-icount".to_string()),
            args,
            net: Some(NetSpec::User(forwards)),
            stats: true,
            ..RunOptions::default()
        };
        let (qemu, banner) = (spec.qemu, spec.banner);
        let console = Capture::default();
        let cap = console.clone();
        let qemu = qemu.to_string();
        let vm = std::thread::spawn(move || run_with_qemu(&opts, &qemu, Box::new(cap)));
        let t = Instant::now();
        while !console.text().contains(banner) {
            if vm.is_finished() {
                // The VMM's own error (e.g. QEMU not installed) says more than the console.
                let why = match vm.join() {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(r)) => format!("the guest exited with {} first", r.exit_code),
                    Err(_) => "the VM thread panicked".into(),
                };
                return Err(format!(
                    "the guest did not start serving: {why}\n{}",
                    console.text()
                ));
            }
            if t.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "the guest did not start serving in 60 s:\n{}",
                    console.text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(GuestVm {
            port,
            udp_port,
            console,
            vm,
        })
    }

    /// What the console has shown so far.
    pub fn console_text(&self) -> String {
        self.console.text()
    }

    /// Whether the VM has ended.
    pub fn is_finished(&self) -> bool {
        self.vm.is_finished()
    }

    /// Waits for the VM; its console if it exited 0.
    pub fn finish(self) -> Result<String, String> {
        let res = self
            .vm
            .join()
            .map_err(|_| "the VM thread panicked".to_string())?
            .map_err(|e| e.to_string())?;
        if res.exit_code != 0 {
            return Err(format!(
                "the guest exited with {}:\n{}",
                res.exit_code,
                self.console.text()
            ));
        }
        Ok(self.console.text())
    }
}
