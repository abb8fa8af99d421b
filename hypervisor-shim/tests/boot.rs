//! Boots hand-assembled guests through `ferrix_shim::run` (needs /dev/kvm; skipped without).

mod common;

use std::time::{Duration, Instant};

use common::{Asm, Console, DATA, LOAD, block, elf, elf_with, kvm_available, segment, temp_file};
use ferrix_abi::{ABI_VERSION, ERR_FAULT, PORT_EXIT, PORT_HYPERCALL, PORT_PROBE, nr};
use ferrix_shim::{ShimError, VmConfig, VmOutcome, run};

fn config(name: &str, seg: &[u8], cpus: u32, timeout: Duration) -> VmConfig {
    VmConfig {
        image: temp_file(name, &elf(seg, true)),
        cpus,
        mem_bytes: 32 << 20,
        cmdline: String::new(),
        timeout: Some(timeout),
        net: None,
        stats_sink: None,
    }
}

fn boot(cfg: &VmConfig) -> (Result<VmOutcome, ShimError>, String) {
    let console = Console::default();
    let r = run(cfg, Box::new(console.clone()));
    let _ = std::fs::remove_file(&cfg.image);
    (r, console.text())
}

/// Prints "hi from guest\n" through a CONSOLE_WRITE hypercall, then exits with 7.
fn hello_guest() -> Vec<u8> {
    let msg = b"hi from guest\n".to_vec();
    let code = Asm::default()
        .out_port(PORT_HYPERCALL, LOAD + DATA)
        .out_port(PORT_EXIT, 7)
        .hang();
    let blk = block(
        ABI_VERSION,
        nr::CONSOLE_WRITE,
        [u64::from(LOAD + DATA + 0x40), msg.len() as u64, 0, 0],
    );
    segment(code, &[(0, blk), (0x40, msg)])
}

#[test]
fn hello_prints_and_exits_7() {
    if !kvm_available() {
        return;
    }
    let (r, out) = boot(&config("hello", &hello_guest(), 1, Duration::from_secs(20)));
    assert_eq!(r.unwrap(), VmOutcome::Exited(7));
    assert_eq!(out, "hi from guest\n");
}

#[test]
fn two_vcpus_exit_with_aps_waiting_for_sipi() {
    if !kvm_available() {
        return;
    }
    let (r, out) = boot(&config("smp", &hello_guest(), 2, Duration::from_secs(20)));
    assert_eq!(r.unwrap(), VmOutcome::Exited(7));
    assert_eq!(out, "hi from guest\n");
}

#[test]
fn probe_port_answers_magic() {
    if !kvm_available() {
        return;
    }
    let code = Asm::default()
        .mov_edx(u32::from(PORT_PROBE))
        .inp()
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let (r, _) = boot(&config(
        "probe",
        &segment(code, &[]),
        1,
        Duration::from_secs(20),
    ));
    assert_eq!(r.unwrap(), VmOutcome::Exited(ferrix_abi::PROBE_MAGIC));
}

#[test]
fn endless_loop_times_out() {
    if !kvm_available() {
        return;
    }
    let start = Instant::now();
    let (r, _) = boot(&config(
        "loop",
        &segment(Asm::default().hang(), &[]),
        1,
        Duration::from_secs(2),
    ));
    assert_eq!(r.unwrap(), VmOutcome::TimedOut);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[test]
fn timeout_stops_bsp_and_waiting_ap() {
    if !kvm_available() {
        return;
    }
    let cfg = config(
        "loop2",
        &segment(Asm::default().hang(), &[]),
        2,
        Duration::from_millis(500),
    );
    assert_eq!(boot(&cfg).0.unwrap(), VmOutcome::TimedOut);
}

#[test]
fn triple_fault_is_reported_with_registers() {
    if !kvm_available() {
        return;
    }
    // The IDT limit is 0 at entry, so #UD escalates to a triple fault.
    let (r, _) = boot(&config(
        "ud2",
        &segment(Asm::default().ud2(), &[]),
        1,
        Duration::from_secs(20),
    ));
    let e = r.unwrap_err();
    let msg = e.to_string();
    assert!(msg.lines().next().unwrap().contains("triple"), "{msg}");
    assert!(
        msg.contains("RIP=") && msg.contains("CR0=") && msg.contains("CS="),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 125);
}

#[test]
fn bad_console_address_returns_fault_to_guest() {
    if !kvm_available() {
        return;
    }
    let ret_gpa = LOAD + DATA + ferrix_abi::HypercallBlock::RET_OFFSET as u32;
    let code = Asm::default()
        // A block outside RAM, then a misaligned one: both ignored, the shim survives.
        .out_port(PORT_HYPERCALL, 0xffff_fff8)
        .out_port(PORT_HYPERCALL, LOAD + DATA + 4)
        // A console write whose range wraps around the address space.
        .out_port(PORT_HYPERCALL, LOAD + DATA)
        .load_eax(ret_gpa)
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let blk = block(ABI_VERSION, nr::CONSOLE_WRITE, [u64::MAX - 2, 16, 0, 0]);
    let (r, out) = boot(&config(
        "fault",
        &segment(code, &[(0, blk)]),
        1,
        Duration::from_secs(20),
    ));
    assert_eq!(r.unwrap(), VmOutcome::Exited(ERR_FAULT as u32));
    assert_eq!(out, "");
}

/// STATS_PUSH: a good record reaches the sink unparsed; a range outside RAM and an oversized
/// length are refused (ERR_FAULT, ERR_INVAL) and never reach it.
#[test]
fn stats_push_reaches_the_sink_and_bad_ones_do_not() {
    if !kvm_available() {
        return;
    }
    let rec = b"FXSTATS v=1 seq=0 t_ns=1 final=1 cores=0\n".to_vec();
    let at = |off: u32| u64::from(LOAD + DATA + off);
    let ret = |off: u32| LOAD + DATA + off + ferrix_abi::HypercallBlock::RET_OFFSET as u32;
    let too_long = ferrix_abi::stats::RECORD_MAX as u64 + 1;
    let code = Asm::default()
        .out_port(PORT_HYPERCALL, LOAD + DATA)
        .out_port(PORT_HYPERCALL, LOAD + DATA + 0x40)
        .out_port(PORT_HYPERCALL, LOAD + DATA + 0x80)
        // Exit with the oversized push's result.
        .load_eax(ret(0x80))
        .mov_edx(u32::from(PORT_EXIT))
        .out()
        .hang();
    let blocks = [
        block(
            ABI_VERSION,
            nr::STATS_PUSH,
            [at(0x100), rec.len() as u64, 0, 0],
        ),
        block(ABI_VERSION, nr::STATS_PUSH, [u64::MAX - 8, 16, 0, 0]),
        block(ABI_VERSION, nr::STATS_PUSH, [at(0x100), too_long, 0, 0]),
    ];
    let mut cfg = config(
        "stats",
        &segment(
            code,
            &[
                (0, blocks[0].clone()),
                (0x40, blocks[1].clone()),
                (0x80, blocks[2].clone()),
                (0x100, rec.clone()),
            ],
        ),
        1,
        Duration::from_secs(20),
    );
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let g = got.clone();
    cfg.stats_sink = Some(ferrix_shim::StatsSink(std::sync::Arc::new(
        move |b: &[u8]| g.lock().unwrap().push(b.to_vec()),
    )));
    let (r, out) = boot(&cfg);
    assert_eq!(r.unwrap(), VmOutcome::Exited(ferrix_abi::ERR_INVAL as u32));
    assert_eq!(out, "", "nothing on the console");
    assert_eq!(*got.lock().unwrap(), [rec]);
}

#[test]
fn library_errors_have_classes() {
    let mut cfg = config("cfg", &hello_guest(), 1, Duration::from_secs(1));
    cfg.cpus = 0;
    assert!(matches!(
        run(&cfg, Box::new(Console::default())),
        Err(ShimError::BadCpuCount { .. })
    ));
    cfg.cpus = 65;
    assert_eq!(
        run(&cfg, Box::new(Console::default()))
            .unwrap_err()
            .exit_code(),
        5
    );
    cfg.cpus = 1;
    cfg.mem_bytes = 4 << 30;
    let e = run(&cfg, Box::new(Console::default())).unwrap_err();
    assert!(
        matches!(e, ShimError::MemoryTooLarge { .. }) && e.to_string().contains("3 GiB"),
        "{e}"
    );
    cfg.mem_bytes = 32 << 20;
    cfg.cmdline = "x".repeat(3000);
    assert!(matches!(
        run(&cfg, Box::new(Console::default())),
        Err(ShimError::CmdlineTooLong { .. })
    ));
    cfg.cmdline.clear();
    // A segment at 1 MiB that does not fit 16 MiB of RAM.
    let big = vec![0u8; 16 << 20];
    cfg.image = temp_file("big", &elf(&big, true));
    cfg.mem_bytes = 16 << 20;
    let e = run(&cfg, Box::new(Console::default())).unwrap_err();
    let _ = std::fs::remove_file(&cfg.image);
    assert!(
        matches!(e, ShimError::ImageTooBig { .. }) && e.exit_code() == 3,
        "{e}"
    );
}

#[test]
fn guest_starts_ap_with_init_sipi_sipi() {
    if !kvm_available() {
        return;
    }
    const ICR_LOW: u32 = 0xfee0_0300;
    const SVR: u32 = 0xfee0_00f0;
    // BSP: enable the LAPIC, INIT then SIPI (vector 0x08 -> 0x8000) twice to all but self.
    let bsp = Asm::default()
        .store(SVR, 0x1ff)
        .store(ICR_LOW, 0x000c_4500)
        .store(ICR_LOW, 0x000c_4608)
        .store(ICR_LOW, 0x000c_4608)
        .hang();
    // AP, real mode at 0800:0000: mov dx, PORT_EXIT; mov eax, 0x42; out dx, eax; jmp $.
    let [lo, hi] = PORT_EXIT.to_le_bytes();
    let ap: Vec<u8> = vec![
        0xba, lo, hi, 0x66, 0xb8, 0x42, 0, 0, 0, 0x66, 0xef, 0xeb, 0xfe,
    ];
    let image = elf_with(&[(LOAD, &segment(bsp, &[])), (0x8000, &ap)], true);
    let cfg = VmConfig {
        image: temp_file("sipi", &image),
        cpus: 2,
        mem_bytes: 32 << 20,
        cmdline: String::new(),
        timeout: Some(Duration::from_secs(20)),
        net: None,
        stats_sink: None,
    };
    assert_eq!(boot(&cfg).0.unwrap(), VmOutcome::Exited(0x42));
}
