//! Test helpers: a tiny in-memory ELF64 builder with an optional PVH note, a hand assembler for
//! the few 32-bit instructions the test guests need, and a shared console buffer.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Where the test image's single PT_LOAD segment is loaded (and where code starts).
pub const LOAD: u32 = 0x10_0000;
/// Offset of the data part inside the segment (code comes first).
pub const DATA: u32 = 0x100;

/// True when KVM tests can run; prints the skip notice otherwise.
pub fn kvm_available() -> bool {
    if std::path::Path::new("/dev/kvm").exists() {
        true
    } else {
        println!("skipping: /dev/kvm not available");
        false
    }
}

/// Builds an ELF64 file with one PT_LOAD segment holding `segment` at [`LOAD`] and, if `pvh`,
/// a PT_NOTE segment with a Xen PHYS32_ENTRY note pointing at [`LOAD`].
pub fn elf(segment: &[u8], pvh: bool) -> Vec<u8> {
    elf_with(&[(LOAD, segment)], pvh)
}

/// Like [`elf`] with several PT_LOAD segments `(address, bytes)`; the PVH entry is [`LOAD`].
pub fn elf_with(segments: &[(u32, &[u8])], pvh: bool) -> Vec<u8> {
    let phnum = segments.len() as u16 + u16::from(pvh);
    let note_off = 64 + 56 * u64::from(phnum);
    let seg_off = 0x200u64;
    let mut f = Vec::new();
    // ELF header.
    f.extend_from_slice(b"\x7fELF");
    f.extend_from_slice(&[2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes());
    f.extend_from_slice(&u64::from(LOAD).to_le_bytes()); // e_entry
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&phnum.to_le_bytes());
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(f.len(), 64);
    let phdr =
        |f: &mut Vec<u8>, ty: u32, flags: u32, off: u64, addr: u64, size: u64, align: u64| {
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&flags.to_le_bytes());
            f.extend_from_slice(&off.to_le_bytes());
            f.extend_from_slice(&addr.to_le_bytes()); // vaddr
            f.extend_from_slice(&addr.to_le_bytes()); // paddr
            f.extend_from_slice(&size.to_le_bytes()); // filesz
            f.extend_from_slice(&size.to_le_bytes()); // memsz
            f.extend_from_slice(&align.to_le_bytes());
        };
    let mut off = seg_off;
    for (addr, bytes) in segments {
        let len = bytes.len() as u64;
        phdr(&mut f, 1, 7, off, u64::from(*addr), len, 0x1000);
        off += len;
    }
    if pvh {
        phdr(&mut f, 4, 4, note_off, 0, 20, 4);
        f.extend_from_slice(&4u32.to_le_bytes()); // namesz
        f.extend_from_slice(&4u32.to_le_bytes()); // descsz
        f.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
        f.extend_from_slice(b"Xen\0");
        f.extend_from_slice(&LOAD.to_le_bytes());
    }
    assert!(f.len() <= seg_off as usize);
    f.resize(seg_off as usize, 0);
    for (_, bytes) in segments {
        f.extend_from_slice(bytes);
    }
    f
}

/// A hand assembler for 32-bit protected-mode code.
#[derive(Default)]
pub struct Asm(pub Vec<u8>);

impl Asm {
    /// `mov edx, imm32`
    pub fn mov_edx(mut self, v: u32) -> Self {
        self.0.push(0xba);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `mov eax, imm32`
    pub fn mov_eax(mut self, v: u32) -> Self {
        self.0.push(0xb8);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `mov eax, [abs32]`
    pub fn load_eax(mut self, addr: u32) -> Self {
        self.0.push(0xa1);
        self.0.extend_from_slice(&addr.to_le_bytes());
        self
    }
    /// `out dx, eax`
    pub fn out(mut self) -> Self {
        self.0.push(0xef);
        self
    }
    /// `in eax, dx`
    pub fn inp(mut self) -> Self {
        self.0.push(0xed);
        self
    }
    /// `out port, value` (32 bit).
    pub fn out_port(self, port: u16, value: u32) -> Self {
        self.mov_edx(u32::from(port)).mov_eax(value).out()
    }
    /// `ud2`
    pub fn ud2(mut self) -> Self {
        self.0.extend_from_slice(&[0x0f, 0x0b]);
        self
    }
    /// `mov dword [abs32], imm32`
    pub fn store(mut self, addr: u32, v: u32) -> Self {
        self.0.extend_from_slice(&[0xc7, 0x05]);
        self.0.extend_from_slice(&addr.to_le_bytes());
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// `jmp $`
    pub fn hang(mut self) -> Self {
        self.0.extend_from_slice(&[0xeb, 0xfe]);
        self
    }
}

/// A segment: `code` at offset 0, then `data` items at `DATA + offset`.
pub fn segment(code: Asm, data: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut s = code.0;
    assert!(s.len() <= DATA as usize, "code overflows into data");
    s.resize(DATA as usize, 0xcc);
    for (off, bytes) in data {
        let at = (DATA + off) as usize;
        if s.len() < at + bytes.len() {
            s.resize(at + bytes.len(), 0);
        }
        s[at..at + bytes.len()].copy_from_slice(bytes);
    }
    s
}

/// Little-endian bytes of a hypercall block.
pub fn block(version: u32, nr: u32, args: [u64; 4]) -> Vec<u8> {
    let mut b = Vec::with_capacity(48);
    b.extend_from_slice(&version.to_le_bytes());
    b.extend_from_slice(&nr.to_le_bytes());
    for a in args {
        b.extend_from_slice(&a.to_le_bytes());
    }
    b.extend_from_slice(&0x7777_i64.to_le_bytes());
    b
}

/// Writes `bytes` to a fresh temporary file and returns its path.
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let p = std::env::temp_dir().join(format!(
        "ferrix-shim-test-{}-{n}-{name}",
        std::process::id()
    ));
    std::fs::write(&p, bytes).expect("write temp file");
    p
}

/// A console writer whose bytes the test can read afterwards.
#[derive(Clone, Default)]
pub struct Console(pub Arc<Mutex<Vec<u8>>>);

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Console {
    /// Everything the guest printed.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
