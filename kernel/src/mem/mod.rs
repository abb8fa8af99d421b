//! Physical memory: the PVH memory map, the frame allocator, page tables and the DMA region
//! allocator (pure logic, host-tested), plus the kernel's live instances (guest only).
pub mod dma;
pub mod frames;
#[cfg(target_os = "none")]
pub mod kernel;
pub mod memmap;
pub mod paging;
