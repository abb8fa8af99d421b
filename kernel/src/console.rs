//! The console: a 16550 UART under QEMU, the hypercall console under the shim, and the
//! `print!`/`println!` macros. A line printed by one `println!` is never interleaved with
//! another core's output (one lock per call, held while formatting).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

/// Where console bytes go. Host builds (unit tests) discard them.
struct Console;

const NO_OWNER: usize = usize::MAX;
static LOCK: spin::Mutex<Console> = spin::Mutex::new(Console);
/// Core currently holding LOCK (so a panic while printing does not deadlock its own core).
static OWNER: AtomicUsize = AtomicUsize::new(NO_OWNER);

#[cfg(target_os = "none")]
mod sink {
    use crate::arch::cpu::{inb, outb};
    use crate::arch::vmm::{self, Vmm};
    use ferrix_abi::{CONSOLE_MAX, HypercallBlock, nr};

    const COM1: u16 = 0x3f8;

    /// Programs COM1 for 115200 8N1 with FIFOs.
    pub fn init_serial() {
        // SAFETY: COM1 belongs to the console; these writes are the standard 16550 setup.
        unsafe {
            outb(COM1 + 1, 0x00);
            outb(COM1 + 3, 0x80);
            outb(COM1, 0x01);
            outb(COM1 + 1, 0x00);
            outb(COM1 + 3, 0x03);
            outb(COM1 + 2, 0xc7);
            outb(COM1 + 4, 0x03);
        }
    }

    pub fn write(bytes: &[u8]) {
        match vmm::current() {
            Vmm::Shim => {
                for chunk in bytes.chunks(CONSOLE_MAX as usize) {
                    let mut blk = HypercallBlock {
                        nr: nr::CONSOLE_WRITE,
                        args: [chunk.as_ptr() as u64, chunk.len() as u64, 0, 0],
                        ..Default::default()
                    };
                    vmm::hypercall(&mut blk);
                }
            }
            Vmm::Qemu => {
                for &b in bytes {
                    if b == b'\n' {
                        put(b'\r');
                    }
                    put(b);
                }
            }
        }
    }

    fn put(b: u8) {
        // SAFETY: COM1 belongs to the console. Bounded wait for "transmit holding empty".
        unsafe {
            for _ in 0..100_000 {
                if inb(COM1 + 5) & 0x20 != 0 {
                    break;
                }
            }
            outb(COM1, b);
        }
    }
}

#[cfg(not(target_os = "none"))]
mod sink {
    pub fn write(_bytes: &[u8]) {}
}

#[cfg(target_os = "none")]
pub use sink::init_serial;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        sink::write(s.as_bytes());
        Ok(())
    }
}

fn this_core() -> usize {
    #[cfg(target_os = "none")]
    {
        crate::percpu::try_core_id().unwrap_or(0)
    }
    #[cfg(not(target_os = "none"))]
    {
        0
    }
}

/// Prints formatted text atomically with respect to other cores' prints.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    let me = this_core();
    if OWNER.load(Ordering::Relaxed) == me && LOCK.is_locked() {
        // We are re-entering from a fault/panic raised while this core held the lock: print
        // without it rather than deadlock.
        let _ = Console.write_fmt(args);
        return;
    }
    let mut c = LOCK.lock();
    OWNER.store(me, Ordering::Relaxed);
    let _ = c.write_fmt(args);
    OWNER.store(NO_OWNER, Ordering::Relaxed);
}

/// Prints to the ferrix console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the ferrix console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
