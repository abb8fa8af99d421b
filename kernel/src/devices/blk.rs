//! The block device (virtio-blk over virtio-mmio): one disk per VM, blocking I/O in 512-byte
//! sectors from any core (one lock). `ferrix run --disk FILE` attaches it under QEMU.
//!
//! Durability: [`flush`] returns once the device reports every completed write stable
//! (VIRTIO_BLK_T_FLUSH; QEMU then fdatasyncs the image). A device that does not offer the
//! flush feature writes through, so every completed write is stable already; [`flush`] is then
//! a no-op. Apps that need an fsync point (the HovercRaft log) write, then flush, before
//! acting on the data.

use super::hal::KernelHal;
use virtio_drivers::device::blk::{SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::mmio::MmioTransport;

/// Bytes in a sector.
pub const SECTOR: usize = SECTOR_SIZE;

static DISK: spin::Mutex<Option<VirtIOBlk<KernelHal, MmioTransport<'static>>>> =
    spin::Mutex::new(None);

/// Why a block operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The VM has no disk.
    NoDisk,
    /// The buffer is not a whole number of sectors.
    Unaligned,
    /// The range passes the end of the disk.
    OutOfRange,
    /// The disk is read-only.
    ReadOnly,
    /// The device refused or failed the request.
    Device,
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BlkError::NoDisk => "the VM has no disk (ferrix run --disk FILE)",
            BlkError::Unaligned => "buffer is not a whole number of 512-byte sectors",
            BlkError::OutOfRange => "past the end of the disk",
            BlkError::ReadOnly => "the disk is read-only",
            BlkError::Device => "the disk failed the request",
        })
    }
}

/// Starts the disk on `transport` (a second disk is ignored).
pub(crate) fn start(transport: MmioTransport<'static>, what: &str) {
    let mut d = DISK.lock();
    if d.is_some() {
        crate::println!("ferrix: second disk ({what}) ignored (one disk supported)");
        return;
    }
    match VirtIOBlk::<KernelHal, _>::new(transport) {
        Ok(blk) => {
            crate::println!(
                "ferrix: virtio-blk ({what}): {} sectors{}",
                blk.capacity(),
                if blk.readonly() { ", read-only" } else { "" }
            );
            *d = Some(blk);
        }
        Err(e) => crate::println!("ferrix: virtio-blk ({what}): {e:?}"),
    }
}

/// The disk's size in sectors (None: no disk).
pub fn capacity() -> Option<u64> {
    DISK.lock().as_ref().map(|d| d.capacity())
}

fn check(
    d: &VirtIOBlk<KernelHal, MmioTransport<'static>>,
    sector: u64,
    len: usize,
) -> Result<(), BlkError> {
    if !len.is_multiple_of(SECTOR) {
        return Err(BlkError::Unaligned);
    }
    let end = sector
        .checked_add((len / SECTOR) as u64)
        .ok_or(BlkError::OutOfRange)?;
    if end > d.capacity() {
        return Err(BlkError::OutOfRange);
    }
    Ok(())
}

/// Reads `buf.len()` bytes (whole sectors) from `sector` on.
pub fn read(sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
    let mut g = DISK.lock();
    let d = g.as_mut().ok_or(BlkError::NoDisk)?;
    check(d, sector, buf.len())?;
    if buf.is_empty() {
        return Ok(());
    }
    let id = usize::try_from(sector).map_err(|_| BlkError::OutOfRange)?;
    d.read_blocks(id, buf).map_err(|_| BlkError::Device)
}

/// Writes `buf` (whole sectors) from `sector` on; durable only after [`flush`].
pub fn write(sector: u64, buf: &[u8]) -> Result<(), BlkError> {
    let mut g = DISK.lock();
    let d = g.as_mut().ok_or(BlkError::NoDisk)?;
    check(d, sector, buf.len())?;
    if d.readonly() {
        return Err(BlkError::ReadOnly);
    }
    if buf.is_empty() {
        return Ok(());
    }
    let id = usize::try_from(sector).map_err(|_| BlkError::OutOfRange)?;
    d.write_blocks(id, buf).map_err(|_| BlkError::Device)
}

/// Makes every completed write durable.
pub fn flush() -> Result<(), BlkError> {
    let mut g = DISK.lock();
    let d = g.as_mut().ok_or(BlkError::NoDisk)?;
    d.flush().map_err(|_| BlkError::Device)
}
