//! The memory the model reaches by DMA. Every address and length comes from the driver (the
//! guest) and is untrusted: an access outside the memory fails with [`DmaError`], which the
//! model counts; it never panics.

/// A DMA access outside the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaError {
    pub addr: u64,
    pub len: usize,
}

/// Guest-physical memory as the device sees it.
pub trait GuestMemory {
    /// Reads `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError>;
    /// Writes `data` at `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError>;
}

/// Flat memory `[base, base + len)` in a vector: the model's own tests.
#[derive(Clone, Debug)]
pub struct VecMemory {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl VecMemory {
    pub fn new(base: u64, len: usize) -> VecMemory {
        VecMemory {
            base,
            bytes: vec![0; len],
        }
    }
    fn range(&self, addr: u64, len: usize) -> Result<core::ops::Range<usize>, DmaError> {
        let err = DmaError { addr, len };
        let start = usize::try_from(addr.checked_sub(self.base).ok_or(err)?).map_err(|_| err)?;
        let end = start.checked_add(len).ok_or(err)?;
        if end > self.bytes.len() {
            return Err(err);
        }
        Ok(start..end)
    }
}

impl GuestMemory for VecMemory {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), DmaError> {
        let r = self.range(addr, data.len())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }
}
