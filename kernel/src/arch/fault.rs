//! Reporting a fatal CPU exception: vector and name, error code, RIP, CR2, registers and a
//! frame-pointer backtrace, then exit with `exit::EXCEPTION`. A fault while reporting a fault
//! exits at once.

use super::cpu::cr2;
use super::idt::{TrapFrame, exception_name};
use crate::println;
use core::sync::atomic::Ordering;
use ferrix_abi::exit::EXCEPTION;

/// Most frames printed in a backtrace.
const MAX_FRAMES: usize = 24;

pub fn report_and_exit(f: &TrapFrame) -> ! {
    let cpu = crate::percpu::try_this();
    if let Some(c) = cpu
        && c.in_exception.swap(true, Ordering::AcqRel)
    {
        println!(
            "ferrix: core {}: nested exception {} while reporting a fault",
            c.id, f.vector
        );
        super::vmm::exit(EXCEPTION);
    }
    let core = cpu.map_or(0, |c| c.id);
    let cr2 = cr2();
    println!(
        "ferrix: core {core}: exception {} ({}) error={:#x} rip={:#x} cr2={:#x}",
        f.vector,
        exception_name(f.vector),
        f.error,
        f.rip,
        cr2
    );
    if f.vector == 14 {
        let cause = if f.error & 1 == 0 {
            "not-present"
        } else {
            "protection"
        };
        let access = if f.error & 2 != 0 {
            "write"
        } else if f.error & 16 != 0 {
            "fetch"
        } else {
            "read"
        };
        println!("ferrix: page fault: {access} of {cr2:#x} ({cause})");
        if crate::mem::kernel::is_ram(cr2, 1) && cr2.abs_diff(f.rsp) < 2 * 4096 {
            println!("ferrix: the address is a stack guard page next to rsp: stack overflow");
        }
    }
    println!(
        "  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n  rsi={:#018x} rdi={:#018x} rbp={:#018x} rsp={:#018x}\n  r8={:#018x} r9={:#018x} r10={:#018x} r11={:#018x}\n  r12={:#018x} r13={:#018x} r14={:#018x} r15={:#018x}\n  rflags={:#x} cs={:#x} ss={:#x}",
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.rsp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        f.rflags,
        f.cs,
        f.ss
    );
    backtrace(f.rip, f.rbp);
    super::vmm::exit(EXCEPTION)
}

/// Prints return addresses by walking saved frame pointers from `rbp`, checking every frame
/// is mapped RAM before reading it.
pub fn backtrace(rip: u64, mut rbp: u64) {
    println!("backtrace:");
    if rip != 0 {
        println!("  #0  {rip:#018x}");
    }
    for i in 1..MAX_FRAMES {
        if rbp == 0 || !rbp.is_multiple_of(8) || !crate::mem::kernel::is_mapped(rbp, 16) {
            break;
        }
        // SAFETY: [rbp, rbp + 16) is mapped RAM (checked above); a frame record is two words.
        let (prev, ret) = unsafe {
            (
                (rbp as *const u64).read(),
                (rbp as *const u64).add(1).read(),
            )
        };
        if ret == 0 {
            break;
        }
        println!("  #{i:<2} {ret:#018x}");
        if prev <= rbp {
            break;
        }
        rbp = prev;
    }
}
