//! vCPU configuration: per-vCPU CPUID (APIC id, x2APIC, hypervisor bit), the PVH initial
//! state of the boot CPU (32-bit protected mode, paging off) and the register dump printed
//! when a guest fails.

use kvm_bindings::{CpuId, kvm_segment};
use kvm_ioctls::VcpuFd;

use crate::error::ShimError;
use crate::start_info::START_INFO_GPA;

/// CPUID leaf 1 ECX bit: x2APIC.
const CPUID_1_ECX_X2APIC: u32 = 1 << 21;
/// CPUID leaf 1 ECX bit: running under a hypervisor.
const CPUID_1_ECX_HYPERVISOR: u32 = 1 << 31;

/// Returns `base` patched for the vCPU whose APIC id is `apic_id`.
pub fn patch_cpuid(base: &CpuId, apic_id: u32) -> CpuId {
    let mut cpuid = base.clone();
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => {
                e.ebx = (e.ebx & 0x00ff_ffff) | (apic_id << 24);
                e.ecx |= CPUID_1_ECX_X2APIC | CPUID_1_ECX_HYPERVISOR;
            }
            0xb | 0x1f => e.edx = apic_id,
            _ => {}
        }
    }
    cpuid
}

/// A flat 32-bit segment (base 0, limit 4 GiB).
fn flat_segment(selector: u16, type_: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_,
        present: 1,
        dpl: 0,
        db: 1,
        s: 1,
        l: 0,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// Puts the boot CPU in the PVH entry state: protected mode, paging off, flat segments,
/// `EIP = entry`, `EBX = start_info`.
pub fn setup_bsp(vcpu: &VcpuFd, entry: u64) -> Result<(), ShimError> {
    let mut sregs = vcpu
        .get_sregs()
        .map_err(|e| ShimError::kvm("KVM_GET_SREGS", e))?;
    sregs.cs = flat_segment(0x08, 0xb);
    let data = flat_segment(0x10, 0x3);
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: 0,
        limit: 0x67,
        selector: 0x18,
        type_: 11,
        present: 1,
        s: 0,
        ..Default::default()
    };
    sregs.ldt = kvm_segment {
        selector: 0,
        type_: 2,
        present: 0,
        unusable: 1,
        ..Default::default()
    };
    sregs.gdt.base = 0;
    sregs.gdt.limit = 0;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x11;
    sregs.cr2 = 0;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
    vcpu.set_sregs(&sregs)
        .map_err(|e| ShimError::kvm("KVM_SET_SREGS", e))?;

    let mut regs = vcpu
        .get_regs()
        .map_err(|e| ShimError::kvm("KVM_GET_REGS", e))?;
    regs.rflags = 0x2;
    regs.rip = entry;
    regs.rbx = START_INFO_GPA;
    regs.rsp = 0;
    vcpu.set_regs(&regs)
        .map_err(|e| ShimError::kvm("KVM_SET_REGS", e))
}

/// A multi-line register dump of `vcpu` (or why it could not be read).
pub fn register_dump(vcpu: &VcpuFd) -> String {
    let regs = match vcpu.get_regs() {
        Ok(r) => r,
        Err(e) => return format!("  (registers unavailable: {e})"),
    };
    let sregs = match vcpu.get_sregs() {
        Ok(s) => s,
        Err(e) => return format!("  (system registers unavailable: {e})"),
    };
    format!(
        "  RIP={:#018x} RSP={:#018x} RFLAGS={:#010x}\n  \
         CR0={:#010x} CR2={:#018x} CR3={:#018x} CR4={:#010x} EFER={:#x}\n  \
         CS={:#06x} (base={:#x} limit={:#x} type={:#x} l={} db={})",
        regs.rip,
        regs.rsp,
        regs.rflags,
        sregs.cr0,
        sregs.cr2,
        sregs.cr3,
        sregs.cr4,
        sregs.efer,
        sregs.cs.selector,
        sregs.cs.base,
        sregs.cs.limit,
        sregs.cs.type_,
        sregs.cs.l,
        sregs.cs.db,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_cpuid_entry2;

    #[test]
    fn cpuid_patch() {
        let base = CpuId::from_entries(&[
            kvm_cpuid_entry2 {
                function: 1,
                ebx: 0xff00_0800,
                ecx: 0x1,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xb,
                index: 0,
                edx: 0,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 0xb,
                index: 1,
                edx: 0,
                ..Default::default()
            },
            kvm_cpuid_entry2 {
                function: 2,
                edx: 9,
                ..Default::default()
            },
        ])
        .unwrap();
        let p = patch_cpuid(&base, 5);
        let e = p.as_slice();
        assert_eq!(e[0].ebx, 0x0500_0800);
        assert_eq!(e[0].ecx, 0x1 | (1 << 21) | (1 << 31));
        assert_eq!((e[1].edx, e[2].edx, e[3].edx), (5, 5, 9));
    }
}
