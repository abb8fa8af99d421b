//! ferrix: a library operating system for microsecond-scale RPC services.
//!
//! An app is a `no_std` binary that depends on this crate and declares its entry with
//! [`entry!`]. The kernel boots through PVH under QEMU or the ferrix shim, brings up every
//! vCPU, and runs the entry on each selected core.
//!
//! Modules that are pure logic (command line, memory map, frame allocator, page tables, DMA
//! allocator, time conversions, core selection, test runner) build on the host too and are
//! unit-tested there; the machine-specific ones exist only for `target_os = "none"`.
#![cfg_attr(target_os = "none", no_std)]

extern crate alloc;

pub mod cmdline;
pub mod console;
pub mod flow;
pub mod mem;
pub mod sdk;
pub mod test;
pub mod time;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod devices;
#[cfg(target_os = "none")]
pub mod ipi;
#[cfg(target_os = "none")]
pub mod net;
#[cfg(target_os = "none")]
pub mod percpu;
#[cfg(target_os = "none")]
pub mod profile;
#[cfg(target_os = "none")]
pub mod selftest;
#[cfg(target_os = "none")]
pub mod start;

#[cfg(target_os = "none")]
pub use devices::blk;
pub use ferrix_abi::exit as exit_code;
pub use sdk::Cores;
#[cfg(target_os = "none")]
pub use sdk::{args, cmdline, core_id, cpus, exit, idle, or_exit};
