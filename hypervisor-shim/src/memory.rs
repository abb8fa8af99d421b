//! Guest RAM: one anonymous mapping at guest-physical 0, its size limits, its registration
//! with KVM and its [`GuestMem`] view for the hypercall layer.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::error::ShimError;
use crate::hypercall::{GuestMem, checked_range};

/// Smallest guest RAM the shim accepts.
pub const MIN_MEM: u64 = 16 << 20;
/// Largest guest RAM the shim accepts (keeps RAM below the 32-bit MMIO hole).
pub const MAX_MEM: u64 = 3 << 30;

/// Checks `bytes` against [`MIN_MEM`]..=[`MAX_MEM`].
pub fn check_size(bytes: u64) -> Result<(), ShimError> {
    if bytes < MIN_MEM {
        return Err(ShimError::MemoryTooSmall {
            bytes,
            min: MIN_MEM,
        });
    }
    if bytes > MAX_MEM {
        return Err(ShimError::MemoryTooLarge {
            bytes,
            max: MAX_MEM,
        });
    }
    Ok(())
}

/// Guest RAM of a VM. Clones share the same mapping (it lives until the last clone).
#[derive(Clone)]
pub struct GuestRam {
    mem: GuestMemoryMmap,
    size: u64,
}

impl GuestRam {
    /// Maps `bytes` of zeroed guest RAM (size already checked).
    pub fn new(bytes: u64) -> Result<Self, ShimError> {
        check_size(bytes)?;
        let mem =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), bytes as usize)]).map_err(|e| {
                ShimError::Host {
                    op: "mapping guest memory",
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
        Ok(GuestRam { mem, size: bytes })
    }

    /// The vm-memory object (for the ELF loader).
    pub fn mmap(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// Registers the RAM as KVM memory slot 0.
    pub fn register(&self, vm: &VmFd) -> Result<(), ShimError> {
        let host = self
            .mem
            .get_host_address(GuestAddress(0))
            .map_err(|e| ShimError::Host {
                op: "finding guest memory",
                source: std::io::Error::other(e.to_string()),
            })?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: self.size,
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the start of a live mapping of exactly `self.size` bytes owned by
        // `self.mem`; the VM that uses it is dropped (all vCPU threads joined) before `self`.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| ShimError::kvm("KVM_SET_USER_MEMORY_REGION", e))
    }
}

impl GuestMem for GuestRam {
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        checked_range(self.size, gpa, buf.len() as u64).is_some()
            && self.mem.read_slice(buf, GuestAddress(gpa)).is_ok()
    }
    fn write(&self, gpa: u64, buf: &[u8]) -> bool {
        checked_range(self.size, gpa, buf.len() as u64).is_some()
            && self.mem.write_slice(buf, GuestAddress(gpa)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(matches!(
            check_size(MIN_MEM - 1),
            Err(ShimError::MemoryTooSmall { .. })
        ));
        assert!(matches!(
            check_size(MAX_MEM + 1),
            Err(ShimError::MemoryTooLarge { .. })
        ));
        assert!(check_size(MIN_MEM).is_ok() && check_size(MAX_MEM).is_ok());
        let msg = check_size(1 << 20).unwrap_err().to_string();
        assert!(msg.contains("16 MiB"), "{msg}");
        let msg = check_size(4 << 30).unwrap_err().to_string();
        assert!(msg.contains("3 GiB"), "{msg}");
    }

    #[test]
    fn ram_bounds() {
        let ram = GuestRam::new(MIN_MEM).unwrap();
        assert!(ram.write(MIN_MEM - 4, &[1, 2, 3, 4]));
        assert!(!ram.write(MIN_MEM - 3, &[1, 2, 3, 4]));
        let mut b = [0u8; 4];
        assert!(ram.read(MIN_MEM - 4, &mut b));
        assert_eq!(b, [1, 2, 3, 4]);
        assert!(!ram.read(u64::MAX - 1, &mut b));
    }
}
