//! Hypercall decoding, validation and dispatch, kept free of KVM so that it unit-tests against
//! a plain byte buffer through the small [`GuestMem`] trait.
//!
//! Every guest-supplied address and length is checked with overflow-safe arithmetic against
//! the guest RAM size before any byte is touched.

use std::io::Write;

use ferrix_abi::{
    ABI_VERSION, CONSOLE_MAX, ERR_FAULT, ERR_INVAL, ERR_NR, ERR_VERSION, HypercallBlock, OK, nr,
};

/// Guest RAM as the hypercall layer sees it: `size()` bytes starting at guest-physical 0.
pub trait GuestMem {
    /// Size of guest RAM in bytes.
    fn size(&self) -> u64;
    /// Copies guest bytes at `gpa` into `buf`. The range has already been checked.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Copies `buf` to guest memory at `gpa`. The range has already been checked.
    fn write(&self, gpa: u64, buf: &[u8]) -> bool;
}

/// Returns `gpa..gpa+len` as a `usize` range when it lies inside `[0, size)`, without overflow.
pub fn checked_range(size: u64, gpa: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let end = gpa.checked_add(len)?;
    if end > size {
        return None;
    }
    let start = usize::try_from(gpa).ok()?;
    let end = usize::try_from(end).ok()?;
    Some(start..end)
}

/// What the vCPU loop must do after a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Resume the guest.
    Continue,
    /// End the VM with this exit code.
    Exit(u32),
    /// The block address itself was bad (unaligned or outside RAM); nothing was written.
    BadBlock,
}

/// Serves one `out` to [`ferrix_abi::PORT_HYPERCALL`] whose value is `block_gpa`.
///
/// Reads the [`HypercallBlock`], performs the call and writes `ret` back. Console bytes go to
/// `console`.
pub fn handle(mem: &dyn GuestMem, block_gpa: u64, console: &mut dyn Write) -> Action {
    if !block_gpa.is_multiple_of(8) {
        return Action::BadBlock;
    }
    if checked_range(mem.size(), block_gpa, HypercallBlock::SIZE as u64).is_none() {
        return Action::BadBlock;
    }
    let mut raw = [0u8; HypercallBlock::SIZE];
    if !mem.read(block_gpa, &mut raw) {
        return Action::BadBlock;
    }
    let block = HypercallBlock::from_bytes(&raw);
    let (ret, action) = dispatch(mem, &block, console);
    let ret_gpa = block_gpa + HypercallBlock::RET_OFFSET as u64;
    if !mem.write(ret_gpa, &ret.to_le_bytes()) {
        return Action::BadBlock;
    }
    action
}

/// Performs the call described by `block`; returns the `ret` value and the follow-up action.
pub fn dispatch(
    mem: &dyn GuestMem,
    block: &HypercallBlock,
    console: &mut dyn Write,
) -> (i64, Action) {
    if block.version != ABI_VERSION {
        return (ERR_VERSION, Action::Continue);
    }
    match block.nr {
        nr::CONSOLE_WRITE => (
            console_write(mem, block.args[0], block.args[1], console),
            Action::Continue,
        ),
        nr::EXIT => (OK, Action::Exit(block.args[0] as u32)),
        _ => (ERR_NR, Action::Continue),
    }
}

/// `CONSOLE_WRITE(gpa, len)`: returns the number of bytes written or an `ERR_*` code.
fn console_write(mem: &dyn GuestMem, gpa: u64, len: u64, console: &mut dyn Write) -> i64 {
    if len > CONSOLE_MAX {
        return ERR_INVAL;
    }
    if checked_range(mem.size(), gpa, len).is_none() {
        return ERR_FAULT;
    }
    // len <= CONSOLE_MAX, so the cast cannot truncate.
    let mut buf = vec![0u8; len as usize];
    if !mem.read(gpa, &mut buf) {
        return ERR_FAULT;
    }
    // A host console that fails (closed pipe) must not stop the guest: the bytes are dropped.
    let _ = console.write_all(&buf).and_then(|()| console.flush());
    len as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Writable guest memory for tests.
    struct TestMem(RefCell<Vec<u8>>);

    impl GuestMem for TestMem {
        fn size(&self) -> u64 {
            self.0.borrow().len() as u64
        }
        fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
            let m = self.0.borrow();
            let Some(r) = checked_range(m.len() as u64, gpa, buf.len() as u64) else {
                return false;
            };
            buf.copy_from_slice(&m[r]);
            true
        }
        fn write(&self, gpa: u64, buf: &[u8]) -> bool {
            let mut m = self.0.borrow_mut();
            let Some(r) = checked_range(m.len() as u64, gpa, buf.len() as u64) else {
                return false;
            };
            m[r].copy_from_slice(buf);
            true
        }
    }

    const BLOCK: u64 = 0x100;

    fn mem_with(version: u32, nr: u32, args: [u64; 4]) -> TestMem {
        let mut m = vec![0u8; 0x1000];
        m[0x200..0x20e].copy_from_slice(b"hi from guest\n");
        let b = BLOCK as usize;
        m[b..b + 4].copy_from_slice(&version.to_le_bytes());
        m[b + 4..b + 8].copy_from_slice(&nr.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            m[b + 8 + 8 * i..b + 16 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        m[b + 40..b + 48].copy_from_slice(&0x5555_i64.to_le_bytes());
        TestMem(RefCell::new(m))
    }

    fn ret_of(m: &TestMem) -> i64 {
        let mut r = [0u8; 8];
        assert!(m.read(BLOCK + 40, &mut r));
        i64::from_le_bytes(r)
    }

    fn call(m: &TestMem) -> (Action, i64, Vec<u8>) {
        let mut out = Vec::new();
        let a = handle(m, BLOCK, &mut out);
        (a, ret_of(m), out)
    }

    #[test]
    fn good_console_write() {
        let m = mem_with(ABI_VERSION, nr::CONSOLE_WRITE, [0x200, 14, 0, 0]);
        assert_eq!(
            call(&m),
            (Action::Continue, 14, b"hi from guest\n".to_vec())
        );
    }

    #[test]
    fn console_write_out_of_range_faults() {
        for (gpa, len) in [
            (0xff0, 0x20),
            (0x1000, 1),
            (u64::MAX, 2),
            (u64::MAX - 3, 8),
            (1 << 40, 1),
        ] {
            let m = mem_with(ABI_VERSION, nr::CONSOLE_WRITE, [gpa, len, 0, 0]);
            assert_eq!(
                call(&m),
                (Action::Continue, ERR_FAULT, vec![]),
                "gpa {gpa:#x} len {len}"
            );
        }
    }

    #[test]
    fn console_write_at_end_of_memory_is_fine() {
        let m = mem_with(ABI_VERSION, nr::CONSOLE_WRITE, [0xff0, 0x10, 0, 0]);
        let (a, r, out) = call(&m);
        assert_eq!((a, r, out.len()), (Action::Continue, 0x10, 0x10));
    }

    #[test]
    fn console_write_too_long_is_inval() {
        let m = mem_with(ABI_VERSION, nr::CONSOLE_WRITE, [0, CONSOLE_MAX + 1, 0, 0]);
        assert_eq!(call(&m), (Action::Continue, ERR_INVAL, vec![]));
        let m = mem_with(ABI_VERSION, nr::CONSOLE_WRITE, [0, u64::MAX, 0, 0]);
        assert_eq!(call(&m), (Action::Continue, ERR_INVAL, vec![]));
    }

    #[test]
    fn bad_version() {
        let m = mem_with(ABI_VERSION + 1, nr::CONSOLE_WRITE, [0x200, 14, 0, 0]);
        assert_eq!(call(&m), (Action::Continue, ERR_VERSION, vec![]));
    }

    #[test]
    fn unknown_nr() {
        let m = mem_with(ABI_VERSION, 99, [0; 4]);
        assert_eq!(call(&m), (Action::Continue, ERR_NR, vec![]));
    }

    #[test]
    fn exit_call() {
        let m = mem_with(ABI_VERSION, nr::EXIT, [42, 0, 0, 0]);
        assert_eq!(call(&m), (Action::Exit(42), OK, vec![]));
    }

    #[test]
    fn bad_block_address() {
        let m = mem_with(ABI_VERSION, nr::EXIT, [42, 0, 0, 0]);
        let mut out = Vec::new();
        assert_eq!(handle(&m, BLOCK + 4, &mut out), Action::BadBlock);
        assert_eq!(handle(&m, 0x1000 - 40, &mut out), Action::BadBlock);
        assert_eq!(handle(&m, u64::MAX - 7, &mut out), Action::BadBlock);
        assert_eq!(ret_of(&m), 0x5555, "nothing written");
    }
}
