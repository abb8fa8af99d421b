//! A fake guest memory for unit tests: a byte vector behind a mutex.

use std::sync::Mutex;

use crate::hypercall::{GuestMem, checked_range};

/// Guest RAM of `size` bytes at guest-physical 0, backed by a `Vec`.
pub struct VecMem(Mutex<Vec<u8>>);

impl VecMem {
    /// Zeroed memory of `size` bytes.
    pub fn new(size: usize) -> Self {
        VecMem(Mutex::new(vec![0; size]))
    }
}

impl GuestMem for VecMem {
    fn size(&self) -> u64 {
        self.0.lock().unwrap().len() as u64
    }
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        let m = self.0.lock().unwrap();
        match checked_range(m.len() as u64, gpa, buf.len() as u64) {
            Some(r) => {
                buf.copy_from_slice(&m[r]);
                true
            }
            None => false,
        }
    }
    fn write(&self, gpa: u64, buf: &[u8]) -> bool {
        let mut m = self.0.lock().unwrap();
        match checked_range(m.len() as u64, gpa, buf.len() as u64) {
            Some(r) => {
                m[r].copy_from_slice(buf);
                true
            }
            None => false,
        }
    }
}
