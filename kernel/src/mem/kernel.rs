//! The kernel's live memory: parses start_info, builds the final identity map (null page and
//! stack guard pages unmapped, APIC/IOAPIC window uncached), and sets up the heap
//! (`#[global_allocator]`), the frame allocator and the DMA region.

use super::dma::DmaAllocator;
use super::frames::{FrameAllocator, PAGE_SIZE, align_up};
use super::memmap::{self, MEMMAP_ENTRY_SIZE, RamMap, Region, START_INFO_SIZE, StartInfoError};
use super::paging::{MapError, NO_CACHE, PageTables, TableMemory, WRITABLE, WRITE_THROUGH};
use crate::arch::cpu::{invlpg, write_cr3};
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: IrqSafeHeap = IrqSafeHeap(LockedHeap::empty());

/// The heap, with interrupts off while its lock is held: interrupt handlers allocate too (the
/// scheduler's IPI handler runs the network stack), and one that interrupts an allocation on
/// its own core would otherwise spin on the lock its core holds for ever.
struct IrqSafeHeap(LockedHeap);

/// Runs `f` with interrupts off, restoring the previous state after.
fn without_interrupts<R>(f: impl FnOnce() -> R) -> R {
    let were_on = crate::arch::cpu::interrupts_enabled();
    crate::arch::cpu::disable_interrupts();
    let r = f();
    if were_on {
        crate::arch::cpu::enable_interrupts();
    }
    r
}

// SAFETY: forwards to `LockedHeap`'s `GlobalAlloc`, only adding interrupt masking around it.
unsafe impl core::alloc::GlobalAlloc for IrqSafeHeap {
    unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
        without_interrupts(|| {
            // SAFETY: the caller's contract for `alloc` is passed on unchanged.
            unsafe { self.0.alloc(layout) }
        })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
        without_interrupts(|| {
            // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
            unsafe { self.0.dealloc(ptr, layout) }
        })
    }
}

/// Frames, tables and the RAM map, behind one lock.
struct Memory {
    frames: FrameAllocator,
    tables: PageTables,
    ram: RamMap,
}

static MEMORY: spin::Mutex<Option<Memory>> = spin::Mutex::new(None);
static DMA: spin::Mutex<Option<DmaAllocator>> = spin::Mutex::new(None);
static RAM: spin::Once<RamMap> = spin::Once::new();

/// The local APIC / IOAPIC window, mapped uncached.
const MMIO_WINDOW: Region = Region {
    start: 0xfec0_0000,
    end: 0xff00_0000,
};
/// Page tables must be reachable by the 32-bit AP trampoline (CR3 is loaded in 32-bit mode).
const LOW_4G: u64 = 1 << 32;
/// Size of the DMA region handed to drivers.
pub const DMA_REGION_SIZE: u64 = 4 << 20;
/// Kernel command line buffer size.
pub const CMDLINE_MAX: usize = 4096;

static mut CMDLINE: [u8; CMDLINE_MAX] = [0; CMDLINE_MAX];
static CMDLINE_LEN: spin::Once<usize> = spin::Once::new();

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Why memory setup failed.
#[derive(Debug)]
pub enum MemError {
    StartInfo(StartInfoError),
    Map(MapError),
    OutOfMemory(&'static str),
}

/// Page-table pages from the frame allocator, accessed through the identity map.
struct LiveTables<'a>(&'a mut FrameAllocator);

impl TableMemory for LiveTables<'_> {
    fn alloc_table(&mut self) -> Option<u64> {
        let p = self.0.alloc_below(1, PAGE_SIZE, LOW_4G).ok()?;
        // SAFETY: p is a fresh frame below 4 GiB, identity-mapped by the boot tables and by
        // every table ferrix builds; nobody else owns it.
        unsafe { core::ptr::write_bytes(p as *mut u8, 0, PAGE_SIZE as usize) };
        Some(p)
    }
    fn read(&self, table: u64, index: usize) -> u64 {
        // SAFETY: `table` is a page-table frame from alloc_table (identity-mapped, 512 entries).
        unsafe { (table as *const u64).add(index).read_volatile() }
    }
    fn write(&mut self, table: u64, index: usize, entry: u64) {
        // SAFETY: as in `read`.
        unsafe { (table as *mut u64).add(index).write_volatile(entry) }
    }
}

fn read_phys<const N: usize>(paddr: u64) -> [u8; N] {
    let mut b = [0u8; N];
    // SAFETY: callers pass addresses the VMM put in start_info, inside the boot identity map
    // (first 4 GiB); the read is a plain copy.
    unsafe { core::ptr::copy_nonoverlapping(paddr as *const u8, b.as_mut_ptr(), N) };
    b
}

/// Sets up memory from the PVH start_info at `start_info`, leaving the pages in `guards`
/// (guard pages of the static boot stacks) unmapped. Boot CPU only, once.
pub fn init(start_info: u64, guards: &[u64]) -> Result<(), MemError> {
    let si = memmap::parse_start_info(&read_phys::<START_INFO_SIZE>(start_info))
        .map_err(MemError::StartInfo)?;
    let mut raw = [0u8; MEMMAP_ENTRY_SIZE * memmap::MAX_REGIONS];
    let n = si.memmap_entries as usize * MEMMAP_ENTRY_SIZE;
    // SAFETY: the memory map lies where start_info says (VMM-provided, below 4 GiB); n is
    // bounded by MAX_REGIONS entries (checked by parse_start_info).
    unsafe { core::ptr::copy_nonoverlapping(si.memmap_paddr as *const u8, raw.as_mut_ptr(), n) };
    let ram = RamMap::from_entries(&raw[..n]).map_err(MemError::StartInfo)?;
    copy_cmdline(si.cmdline_paddr);

    // Linker-script symbols; only their addresses are used.
    let (kstart, kend) = (
        core::ptr::addr_of!(__kernel_start) as u64,
        core::ptr::addr_of!(__kernel_end) as u64,
    );
    let mut frames = FrameAllocator::new(
        &ram,
        0x10_0000,
        &[Region {
            start: kstart,
            end: kend,
        }],
    );

    let mut tables = PageTables::new(&mut LiveTables(&mut frames)).map_err(MemError::Map)?;
    {
        let mut lt = LiveTables(&mut frames);
        for r in ram.regions() {
            tables
                .map_identity(&mut lt, r.start, r.end, WRITABLE)
                .map_err(MemError::Map)?;
        }
        tables
            .map_identity(
                &mut lt,
                MMIO_WINDOW.start,
                MMIO_WINDOW.end,
                WRITABLE | NO_CACHE | WRITE_THROUGH,
            )
            .map_err(MemError::Map)?;
        // Null guard and the static stacks' guard pages.
        tables.unmap_4k(&mut lt, 0).map_err(MemError::Map)?;
        for &g in guards {
            tables.unmap_4k(&mut lt, g).map_err(MemError::Map)?;
        }
    }
    // SAFETY: the new tables identity-map all RAM (code, data, this stack) and the APIC window
    // exactly as the boot tables did, so execution continues unchanged.
    unsafe { write_cr3(tables.root) };

    // Heap: a quarter of RAM, between 1 and 64 MiB.
    let heap_bytes = align_up((ram.total() / 4).clamp(1 << 20, 64 << 20), 2 << 20);
    let heap = frames
        .alloc(heap_bytes / PAGE_SIZE, 2 << 20)
        .map_err(|_| MemError::OutOfMemory("heap"))?;
    // SAFETY: [heap, heap + heap_bytes) is RAM the frame allocator just gave us, mapped
    // writable, used by nothing else; init runs once, on the boot core.
    unsafe { HEAP.0.lock().init(heap as *mut u8, heap_bytes as usize) };

    let dma = frames
        .alloc(DMA_REGION_SIZE / PAGE_SIZE, 2 << 20)
        .map_err(|_| MemError::OutOfMemory("DMA region"))?;
    *DMA.lock() = Some(DmaAllocator::new(dma, DMA_REGION_SIZE));
    RAM.call_once(|| ram);
    *MEMORY.lock() = Some(Memory {
        frames,
        tables,
        ram,
    });
    Ok(())
}

fn copy_cmdline(paddr: u64) {
    let mut len = 0;
    if paddr != 0 {
        let src = paddr as *const u8;
        // The VMM placed a NUL-terminated command line at `paddr` (below 4 GiB, in the boot
        // identity map); CMDLINE is written only here, before other cores start.
        // SAFETY: as above; at most CMDLINE_MAX - 1 bytes are read and copied.
        unsafe {
            let dst = &mut *core::ptr::addr_of_mut!(CMDLINE);
            while len < CMDLINE_MAX - 1 {
                let b = src.add(len).read();
                if b == 0 {
                    break;
                }
                dst[len] = if b.is_ascii() { b } else { b'?' };
                len += 1;
            }
        }
    }
    CMDLINE_LEN.call_once(|| len);
}

/// The kernel command line (ASCII; non-ASCII bytes were replaced by '?').
pub fn cmdline() -> &'static str {
    let len = CMDLINE_LEN.get().copied().unwrap_or(0);
    // SAFETY: CMDLINE is written once before CMDLINE_LEN is set and never again.
    let bytes = unsafe { &(&*core::ptr::addr_of!(CMDLINE))[..len] };
    core::str::from_utf8(bytes).unwrap_or("")
}

/// The RAM map (after [`init`]).
pub fn ram() -> Option<&'static RamMap> {
    RAM.get()
}

/// Allocates a kernel stack of `bytes` with an unmapped guard page below it; returns the top.
pub fn alloc_stack(bytes: u64) -> Result<u64, MemError> {
    let pages = align_up(bytes, PAGE_SIZE) / PAGE_SIZE;
    let mut guard = MEMORY.lock();
    let m = guard
        .as_mut()
        .ok_or(MemError::OutOfMemory("memory not initialised"))?;
    let base = m
        .frames
        .alloc(pages + 1, PAGE_SIZE)
        .map_err(|_| MemError::OutOfMemory("stack"))?;
    m.tables
        .unmap_4k(&mut LiveTables(&mut m.frames), base)
        .map_err(MemError::Map)?;
    invlpg(base);
    Ok(base + (pages + 1) * PAGE_SIZE)
}

/// Allocates physically contiguous frames (identity-mapped). Returns the physical address.
pub fn alloc_frames(pages: u64, align: u64) -> Option<u64> {
    MEMORY.lock().as_mut()?.frames.alloc(pages, align).ok()
}

/// Allocates `size` bytes of DMA memory aligned to `align`; returns its physical (= virtual)
/// address. Drivers use this for rings and packet buffers.
pub fn dma_alloc(size: u64, align: u64) -> Option<u64> {
    DMA.lock().as_mut()?.alloc(size, align).ok()
}

/// Frees DMA memory from [`dma_alloc`]. Returns false for an address that was not allocated.
pub fn dma_free(addr: u64) -> bool {
    DMA.lock().as_mut().is_some_and(|d| d.free(addr).is_ok())
}

/// Whether `[addr, addr + len)` is RAM (used by backtraces to avoid faulting).
pub fn is_ram(addr: u64, len: u64) -> bool {
    RAM.get().is_some_and(|r| r.contains(addr, len))
}

/// Heap statistics: (used, free) bytes.
pub fn heap_usage() -> (usize, usize) {
    without_interrupts(|| {
        let h = HEAP.0.lock();
        (h.used(), h.free())
    })
}

/// The physical address of the live page tables' root (for the AP trampoline).
pub fn page_table_root() -> u64 {
    MEMORY.lock().as_ref().map_or(0, |m| m.tables.root)
}

/// Translates `addr` through the live page tables (None: unmapped).
pub fn translate(addr: u64) -> Option<u64> {
    let mut g = MEMORY.lock();
    let m = g.as_mut()?;
    let lt = LiveTables(&mut m.frames);
    m.tables.translate(&lt, addr).map(|(p, _)| p)
}

/// Total RAM in bytes.
pub fn ram_total() -> u64 {
    MEMORY.lock().as_ref().map_or(0, |m| m.ram.total())
}

/// Whether `[addr, addr + len)` is mapped by the live tables. Never blocks: returns false if
/// the memory lock is held (e.g. when a fault hit while it was held).
pub fn is_mapped(addr: u64, len: u64) -> bool {
    let Some(end) = addr.checked_add(len.max(1) - 1) else {
        return false;
    };
    let Some(mut g) = MEMORY.try_lock() else {
        return false;
    };
    let Some(m) = g.as_mut() else { return false };
    let lt = LiveTables(&mut m.frames);
    m.tables.translate(&lt, addr).is_some() && m.tables.translate(&lt, end).is_some()
}

/// Identity-maps the device registers `[addr, addr + len)` uncached (idempotent). Returns
/// false if the range overlaps RAM or cannot be mapped.
pub fn map_mmio(addr: u64, len: u64) -> bool {
    let start = addr & !(PAGE_SIZE - 1);
    let Some(end) = addr.checked_add(len).map(|e| align_up(e, PAGE_SIZE)) else {
        return false;
    };
    let mut g = MEMORY.lock();
    let Some(m) = g.as_mut() else { return false };
    if m.ram
        .regions()
        .iter()
        .any(|r| r.start < end && start < r.end)
    {
        return false;
    }
    let mut lt = LiveTables(&mut m.frames);
    let mut page = start;
    while page < end {
        if m.tables.translate(&lt, page).is_none()
            && m.tables
                .map_identity(
                    &mut lt,
                    page,
                    page + PAGE_SIZE,
                    WRITABLE | NO_CACHE | WRITE_THROUGH,
                )
                .is_err()
        {
            return false;
        }
        invlpg(page);
        page += PAGE_SIZE;
    }
    true
}
