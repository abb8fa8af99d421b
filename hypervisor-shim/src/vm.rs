//! Building and running a VM: config checks, image loading, KVM VM and vCPU creation, one host
//! thread per vCPU, waiting for the first outcome (or the timeout) and stopping every vCPU.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, kvm_pit_config};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vmm_sys_util::signal::Killable;

use crate::error::ShimError;
use crate::ixgbe::{self, IxgbePort};
use crate::memory::{self, GuestRam};
use crate::net::device::NetDevice;
use crate::net::{NET_CMDLINE, NetStats, NicModel, setup};
use crate::{MAX_CPUS, VmConfig, VmOutcome, cpu, loader, start_info, vcpu};

/// Address KVM uses for its real-mode TSS pages (Intel), far above guest RAM.
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;

/// Counters of exits the shim ignored.
#[derive(Default)]
pub struct Stats {
    /// Port IO to ports the shim does not serve.
    pub ignored_pio: AtomicU64,
    /// MMIO reads and writes outside the NIC's register page.
    pub ignored_mmio: AtomicU64,
    /// Hypercalls whose block address was unaligned or outside RAM.
    pub bad_hypercalls: AtomicU64,
}

/// State shared by the main thread and the vCPU threads.
pub struct Shared {
    /// Guest RAM.
    pub ram: GuestRam,
    console: Mutex<Box<dyn Write + Send>>,
    /// Set once the VM must stop; vCPU threads check it before each `KVM_RUN`.
    pub stop: AtomicBool,
    outcome: Mutex<Option<Result<VmOutcome, ShimError>>>,
    done: Condvar,
    /// Ignored-exit counters.
    pub stats: Stats,
    /// The NIC, whose register page the vCPU threads serve.
    pub net: Option<Arc<NetDevice>>,
    /// The 82599 NIC (instead of `net`), whose PCI ports and BAR0 the vCPU threads serve.
    pub ixgbe: Option<Arc<IxgbePort>>,
    /// Where the guest's live statistics records go ([`VmConfig::stats_sink`]).
    pub stats_sink: Option<crate::hypercall::StatsSink>,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    /// The guest console (serialised between vCPUs).
    pub fn console(&self) -> MutexGuard<'_, Box<dyn Write + Send>> {
        lock(&self.console)
    }

    /// Records `r` as the outcome unless one was recorded before, and asks every vCPU to stop.
    pub fn finish(&self, r: Result<VmOutcome, ShimError>) {
        let mut o = lock(&self.outcome);
        if o.is_none() {
            *o = Some(r);
        }
        self.stop.store(true, Ordering::SeqCst);
        self.done.notify_all();
    }

    /// Waits until an outcome is recorded or `timeout` passes (then records `TimedOut`).
    fn wait(&self, timeout: Option<Duration>) {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut o = lock(&self.outcome);
        while o.is_none() {
            match deadline {
                None => o = self.done.wait(o).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        *o = Some(Ok(VmOutcome::TimedOut));
                        break;
                    }
                    o = self
                        .done
                        .wait_timeout(o, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    fn take_outcome(&self) -> Result<VmOutcome, ShimError> {
        lock(&self.outcome).take().unwrap_or_else(|| {
            Err(ShimError::Host {
                op: "running the VM",
                source: std::io::Error::other("all vCPU threads ended without an outcome"),
            })
        })
    }
}

/// Checks the configuration that does not depend on the image.
fn check_config(cfg: &VmConfig) -> Result<String, ShimError> {
    if cfg.cpus == 0 || cfg.cpus > MAX_CPUS {
        return Err(ShimError::BadCpuCount {
            cpus: cfg.cpus,
            max: MAX_CPUS,
        });
    }
    memory::check_size(cfg.mem_bytes)?;
    match &cfg.net {
        Some(net) => {
            setup::device_config(net, cfg.cpus)?;
            let word = match net.model {
                NicModel::Virtio => NET_CMDLINE,
                NicModel::Ixgbe => ixgbe::CMDLINE,
            };
            start_info::cmdline(&format!("{} {word}", cfg.cmdline.trim()), cfg.cpus)
        }
        None => start_info::cmdline(&cfg.cmdline, cfg.cpus),
    }
}

fn open_kvm() -> Result<Kvm, ShimError> {
    Kvm::new().map_err(|e| ShimError::KvmUnavailable(std::io::Error::from_raw_os_error(e.errno())))
}

/// Creates the VM with its RAM, interrupt controllers, PIT and configured vCPUs.
fn build(
    kvm: &Kvm,
    ram: &GuestRam,
    cpus: u32,
    entry: u64,
) -> Result<(VmFd, Vec<VcpuFd>), ShimError> {
    let vm = kvm
        .create_vm()
        .map_err(|e| ShimError::kvm("KVM_CREATE_VM", e))?;
    vm.set_tss_address(KVM_TSS_ADDRESS)
        .map_err(|e| ShimError::kvm("KVM_SET_TSS_ADDR", e))?;
    ram.register(&vm)?;
    vm.create_irq_chip()
        .map_err(|e| ShimError::kvm("KVM_CREATE_IRQCHIP", e))?;
    let pit = kvm_pit_config {
        flags: KVM_PIT_SPEAKER_DUMMY,
        ..Default::default()
    };
    vm.create_pit2(pit)
        .map_err(|e| ShimError::kvm("KVM_CREATE_PIT2", e))?;
    let base_cpuid = kvm
        .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
        .map_err(|e| ShimError::kvm("KVM_GET_SUPPORTED_CPUID", e))?;
    let mut vcpus = Vec::with_capacity(cpus as usize);
    for id in 0..cpus {
        let vcpu = vm
            .create_vcpu(u64::from(id))
            .map_err(|e| ShimError::kvm("KVM_CREATE_VCPU", e))?;
        vcpu.set_cpuid2(&cpu::patch_cpuid(&base_cpuid, id))
            .map_err(|e| ShimError::kvm("KVM_SET_CPUID2", e))?;
        if id == 0 {
            cpu::setup_bsp(&vcpu, entry)?;
        }
        vcpus.push(vcpu);
    }
    Ok((vm, vcpus))
}

/// Kicks every unfinished vCPU thread until all have ended, then joins them.
fn stop_all(shared: &Shared, handles: Vec<JoinHandle<()>>) {
    shared.stop.store(true, Ordering::SeqCst);
    loop {
        let mut running = false;
        for h in handles.iter().filter(|h| !h.is_finished()) {
            running = true;
            // A failed kill means the thread is already gone; the loop notices.
            let _ = h.kill(vcpu::kick_signal());
        }
        if !running {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for h in handles {
        if h.join().is_err() {
            shared.finish(Err(ShimError::Host {
                op: "running a vCPU thread",
                source: std::io::Error::other("the vCPU thread panicked"),
            }));
        }
    }
}

/// See [`crate::run_with_stats`].
pub fn run(
    cfg: &VmConfig,
    console: Box<dyn Write + Send>,
) -> Result<(VmOutcome, Option<NetStats>), ShimError> {
    let cmdline = check_config(cfg)?;
    let image = loader::read_image(&cfg.image)?;
    loader::check_elf(&cfg.image, &image, cfg.mem_bytes)?;
    let prepared = cfg
        .net
        .as_ref()
        .map(|n| setup::prepare(n, cfg.cpus))
        .transpose()?;
    let ram = GuestRam::new(cfg.mem_bytes)?;
    let entry = loader::load(&cfg.image, image, &ram)?;
    start_info::write(&ram, &cmdline)?;
    let kvm = open_kvm()?;
    vcpu::install_kick_handler()?;
    let (vm, vcpus) = build(&kvm, &ram, cfg.cpus, entry)?;
    // The 82599 takes the prepared backend instead of a virtio-net device.
    let (prepared, ixgbe_port) = match (prepared, cfg.net.as_ref().map(|n| n.model)) {
        (Some(p), Some(NicModel::Ixgbe)) => {
            let port = Arc::new(IxgbePort::new(ram.clone(), p.cfg.mac, p.io.backend));
            let worker = ixgbe::worker::Worker::spawn(Arc::clone(&port)).map_err(|source| {
                ShimError::Host {
                    op: "starting the 82599 device thread",
                    source,
                }
            })?;
            (None, Some((port, worker)))
        }
        (p, _) => (p, None),
    };
    let attached = prepared.map(|p| setup::attach(&vm, &ram, p)).transpose()?;

    let shared = Arc::new(Shared {
        ram,
        console: Mutex::new(console),
        stop: AtomicBool::new(false),
        outcome: Mutex::new(None),
        done: Condvar::new(),
        stats: Stats::default(),
        net: attached.as_ref().map(|a| Arc::clone(&a.device)),
        ixgbe: ixgbe_port.as_ref().map(|(p, _)| Arc::clone(p)),
        stats_sink: cfg.stats_sink.clone(),
    });
    let mut handles = Vec::with_capacity(vcpus.len());
    for (index, fd) in vcpus.into_iter().enumerate() {
        let s = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name(format!("vcpu{index}"))
            .spawn(move || vcpu::run_vcpu(fd, index as u32, s));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                shared.finish(Err(ShimError::Host {
                    op: "spawning a vCPU thread",
                    source: e,
                }));
                break;
            }
        }
    }
    shared.wait(cfg.timeout);
    stop_all(&shared, handles);
    let net_stats = attached.map(|a| {
        // Joining the device thread closes nothing yet: the backend drops with its NetIo.
        drop(a.worker.stop());
        a.device.stats()
    });
    if let Some((port, worker)) = ixgbe_port {
        worker.stop();
        if std::env::var_os("FERRIX_SHIM_STATS").is_some() {
            eprintln!(
                "ferrix-shim: 82599 rx {} tx {} backend errors {} odd writes {}, model {:?}",
                port.stats.rx_frames.load(Ordering::Relaxed),
                port.stats.tx_frames.load(Ordering::Relaxed),
                port.stats.backend_errors.load(Ordering::Relaxed),
                port.stats.odd_writes.load(Ordering::Relaxed),
                port.model_counters()
            );
        }
    }
    drop(vm);
    let _ = shared.console().flush();
    if std::env::var_os("FERRIX_SHIM_STATS").is_some() {
        eprintln!(
            "ferrix-shim: ignored port IO {}, ignored MMIO {}, bad hypercall blocks {}",
            shared.stats.ignored_pio.load(Ordering::Relaxed),
            shared.stats.ignored_mmio.load(Ordering::Relaxed),
            shared.stats.bad_hypercalls.load(Ordering::Relaxed),
        );
        if let Some(n) = &net_stats {
            eprintln!("{n}");
        }
    }
    shared.take_outcome().map(|o| (o, net_stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{NetBackend, NetConfig};

    #[test]
    fn nic_appends_its_cmdline_word() {
        let mut cfg = VmConfig::new("/img");
        cfg.cmdline = "quiet".into();
        assert_eq!(check_config(&cfg).unwrap(), "quiet ferrix.cpus=1");
        cfg.net = Some(NetConfig::new(NetBackend::Tap("t0".into())));
        assert_eq!(
            check_config(&cfg).unwrap(),
            "quiet virtio_mmio.device=4K@0xd0000000:5 ferrix.cpus=1"
        );
        cfg.cmdline.clear();
        assert_eq!(
            check_config(&cfg).unwrap(),
            "virtio_mmio.device=4K@0xd0000000:5 ferrix.cpus=1"
        );
        cfg.cpus = 20;
        let dev = setup::device_config(cfg.net.as_ref().unwrap(), cfg.cpus).unwrap();
        assert_eq!(dev.pairs, 16, "default pairs = vCPUs, at most 16");
        cfg.cpus = 3;
        let dev = setup::device_config(cfg.net.as_ref().unwrap(), cfg.cpus).unwrap();
        assert_eq!((dev.pairs, dev.mac[0]), (3, 0x52));
    }
}
