//! A benchmark's guest: an app booted under QEMU's user network with one UDP port forwarded
//! from 127.0.0.1, waited for until it prints its banner, and joined when it has exited. Used
//! by `bench udp-echo` and `bench r2p2`.

use crate::bench::Capture;
use crate::bench_udp::free_port;
use crate::error::CliError;
use crate::netspec::{Forward, NetSpec};
use crate::run::{Accel, RunOptions, RunResult, Vmm, run_with_qemu};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running benchmark guest.
pub(crate) struct GuestVm {
    /// The host port (on 127.0.0.1) forwarded to the guest.
    pub port: u16,
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
        let port = free_port().map_err(|e| e.to_string())?;
        let opts = RunOptions {
            target: image.to_string_lossy().into_owned(),
            vmm: Vmm::Qemu,
            cpus: 1,
            timeout: Some(Duration::from_secs(300)),
            accel: Accel::Tcg,
            profile: icount.then(|| "microvm-icount".to_string()),
            args: vec![
                "ferrix.ip=10.0.2.15/24".into(),
                "ferrix.gw=10.0.2.2".into(),
                format!("exit-after={exit_after}"),
            ],
            net: Some(NetSpec::User(vec![Forward {
                udp: true,
                host: port,
                guest: guest_port,
            }])),
            ..RunOptions::default()
        };
        let console = Capture::default();
        let cap = console.clone();
        let qemu = qemu.to_string();
        let vm = std::thread::spawn(move || run_with_qemu(&opts, &qemu, Box::new(cap)));
        let t = Instant::now();
        while !console.text().contains(banner) {
            if t.elapsed() > Duration::from_secs(60) || vm.is_finished() {
                return Err(format!(
                    "the guest did not start serving:\n{}",
                    console.text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(GuestVm { port, console, vm })
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
