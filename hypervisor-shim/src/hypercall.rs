//! Hypercall decoding, validation and dispatch, kept free of KVM so that it unit-tests against
//! a plain byte buffer through the small [`GuestMem`] trait.
//!
//! Every guest-supplied address and length is checked with overflow-safe arithmetic against
//! the guest RAM size before any byte is touched.

use std::io::Write;
use std::sync::Arc;

use ferrix_abi::{
    ABI_VERSION, CONSOLE_MAX, ERR_FAULT, ERR_INVAL, ERR_NR, ERR_VERSION, HypercallBlock,
    MIN_ABI_VERSION, OK, nr,
};

/// Where `STATS_PUSH` records go: a host callback given the record's bytes, unparsed (the
/// host validates them with `ferrix_abi::stats::parse`). Without one the records are dropped.
#[derive(Clone)]
pub struct StatsSink(pub Arc<StatsFn>);

/// The callback behind a [`StatsSink`].
pub type StatsFn = dyn Fn(&[u8]) + Send + Sync;

impl std::fmt::Debug for StatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatsSink")
    }
}

/// Where a hypercall's output goes: the console, and the live statistics sink if any.
pub struct Outputs<'a> {
    pub console: &'a mut dyn Write,
    pub stats: Option<&'a StatsSink>,
}

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
/// Reads the [`HypercallBlock`], performs the call and writes `ret` back. Console bytes and
/// statistics records go to `out`.
pub fn handle(mem: &dyn GuestMem, block_gpa: u64, out: Outputs<'_>) -> Action {
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
    let (ret, action) = dispatch(mem, &block, out);
    let ret_gpa = block_gpa + HypercallBlock::RET_OFFSET as u64;
    if !mem.write(ret_gpa, &ret.to_le_bytes()) {
        return Action::BadBlock;
    }
    action
}

/// Performs the call described by `block`; returns the `ret` value and the follow-up action.
pub fn dispatch(mem: &dyn GuestMem, block: &HypercallBlock, out: Outputs<'_>) -> (i64, Action) {
    if !(MIN_ABI_VERSION..=ABI_VERSION).contains(&block.version) {
        return (ERR_VERSION, Action::Continue);
    }
    if nr::since(block.nr) > block.version {
        return (ERR_NR, Action::Continue);
    }
    let [a0, a1, ..] = block.args;
    match block.nr {
        nr::CONSOLE_WRITE => (
            copy_in(mem, a0, a1, CONSOLE_MAX, |buf| {
                // A host console that fails (closed pipe) must not stop the guest: the bytes
                // are dropped.
                let _ = out
                    .console
                    .write_all(buf)
                    .and_then(|()| out.console.flush());
            }),
            Action::Continue,
        ),
        nr::EXIT => (OK, Action::Exit(a0 as u32)),
        nr::STATS_PUSH => (
            copy_in(mem, a0, a1, ferrix_abi::stats::RECORD_MAX as u64, |buf| {
                if let Some(sink) = out.stats {
                    (sink.0)(buf);
                }
            }),
            Action::Continue,
        ),
        _ => (ERR_NR, Action::Continue),
    }
}

/// Copies `len` (at most `max`) guest bytes at `gpa` and gives them to `f`: returns `len`, or
/// [`ERR_INVAL`] for a length over `max`, [`ERR_FAULT`] for a range outside guest RAM.
fn copy_in(mem: &dyn GuestMem, gpa: u64, len: u64, max: u64, f: impl FnOnce(&[u8])) -> i64 {
    if len > max {
        return ERR_INVAL;
    }
    if checked_range(mem.size(), gpa, len).is_none() {
        return ERR_FAULT;
    }
    // len <= max (at most 64 KiB), so the cast cannot truncate.
    let mut buf = vec![0u8; len as usize];
    if !mem.read(gpa, &mut buf) {
        return ERR_FAULT;
    }
    f(&buf);
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
        let a = handle(m, BLOCK, outputs(&mut out, None));
        (a, ret_of(m), out)
    }

    fn outputs<'a>(console: &'a mut Vec<u8>, stats: Option<&'a StatsSink>) -> Outputs<'a> {
        Outputs { console, stats }
    }

    /// A sink collecting the records it is given.
    fn collecting() -> (StatsSink, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        (
            StatsSink(Arc::new(move |b: &[u8]| g.lock().unwrap().push(b.to_vec()))),
            got,
        )
    }

    #[test]
    fn stats_push_reaches_the_sink_bounds_checked() {
        let (sink, got) = collecting();
        let push = |gpa: u64, len: u64, version: u32| {
            let m = mem_with(version, nr::STATS_PUSH, [gpa, len, 0, 0]);
            let mut out = Vec::new();
            let a = handle(&m, BLOCK, outputs(&mut out, Some(&sink)));
            assert!(out.is_empty(), "nothing on the console");
            (a, ret_of(&m))
        };
        assert_eq!(push(0x200, 14, ABI_VERSION), (Action::Continue, 14));
        assert_eq!(
            got.lock().unwrap().as_slice(),
            [b"hi from guest\n".to_vec()]
        );
        for (gpa, len) in [(0xff0, 0x20), (u64::MAX, 2), (1 << 40, 1)] {
            assert_eq!(push(gpa, len, ABI_VERSION), (Action::Continue, ERR_FAULT));
        }
        let over = ferrix_abi::stats::RECORD_MAX as u64 + 1;
        assert_eq!(push(0, over, ABI_VERSION), (Action::Continue, ERR_INVAL));
        assert_eq!(
            push(0, u64::MAX, ABI_VERSION),
            (Action::Continue, ERR_INVAL)
        );
        // A version-1 guest does not know the call.
        assert_eq!(push(0x200, 14, 1), (Action::Continue, ERR_NR));
        assert_eq!(
            got.lock().unwrap().len(),
            1,
            "refused pushes never reach the sink"
        );
        // Without a sink the record is accepted and dropped.
        let m = mem_with(ABI_VERSION, nr::STATS_PUSH, [0x200, 14, 0, 0]);
        assert_eq!(call(&m), (Action::Continue, 14, vec![]));
    }

    #[test]
    fn version_one_guests_still_get_a_console() {
        let m = mem_with(MIN_ABI_VERSION, nr::CONSOLE_WRITE, [0x200, 14, 0, 0]);
        assert_eq!(
            call(&m),
            (Action::Continue, 14, b"hi from guest\n".to_vec())
        );
        let m = mem_with(0, nr::CONSOLE_WRITE, [0x200, 14, 0, 0]);
        assert_eq!(call(&m).1, ERR_VERSION);
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
        for gpa in [BLOCK + 4, 0x1000 - 40, u64::MAX - 7] {
            assert_eq!(handle(&m, gpa, outputs(&mut out, None)), Action::BadBlock);
        }
        assert_eq!(ret_of(&m), 0x5555, "nothing written");
    }
}
