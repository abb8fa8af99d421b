//! The `virtio-drivers` hardware abstraction for ferrix: DMA memory from the kernel's DMA
//! region, device addresses equal to virtual addresses (identity map, no IOMMU), MMIO BARs
//! mapped uncached on demand.

use core::ptr::NonNull;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

/// ferrix's `Hal`.
pub struct KernelHal;

const PAGE: usize = 4096;

// SAFETY: dma_alloc returns zeroed, page-aligned, exclusively owned memory from the DMA
// allocator (identity-mapped, so the physical address is the pointer); dma_dealloc returns it;
// share/unshare are identities because devices see guest-physical = virtual addresses;
// mmio_phys_to_virt maps the BAR before returning the identity pointer.
unsafe impl Hal for KernelHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let Some(p) = crate::mem::kernel::dma_alloc((pages * PAGE) as u64, PAGE as u64) else {
            return (0, NonNull::dangling());
        };
        // SAFETY: p is a fresh, exclusively owned DMA allocation of pages * PAGE bytes.
        unsafe { core::ptr::write_bytes(p as *mut u8, 0, pages * PAGE) };
        (p, NonNull::new(p as *mut u8).unwrap_or(NonNull::dangling()))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        if crate::mem::kernel::dma_free(paddr) {
            0
        } else {
            -1
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        crate::mem::kernel::map_mmio(paddr, size as u64);
        NonNull::new(paddr as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
