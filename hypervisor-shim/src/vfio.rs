//! Groundwork for VFIO passthrough of a host NIC (issue 17; not wired to a VM yet): what a
//! host must have before a device can be handed to a guest, checked in order with an error
//! naming the first thing missing and how to fix it; and the DMA mapping plan, which host
//! memory the IOMMU must map at which I/O virtual address so that the device can reach guest
//! RAM by guest-physical address.
//!
//! Prerequisites ([`probe`], from sysfs and /dev, nothing opened): the PCI device exists, it
//! is in an IOMMU group (the host has an IOMMU and it is on), it is bound to `vfio-pci`,
//! `/dev/vfio/vfio` exists (the VFIO modules are loaded) and so does its group's node. The
//! roots are parameters so the tests can build fake trees; the shim passes `/sys` and `/dev`.

use std::path::{Path, PathBuf};

/// A PCI address `DDDD:BB:DD.F` (the domain may be left out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAddr {
    pub domain: u16,
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl std::fmt::Display for PciAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

impl std::str::FromStr for PciAddr {
    type Err = VfioError;

    fn from_str(s: &str) -> Result<PciAddr, VfioError> {
        let bad = || VfioError::BadAddress(s.to_string());
        let (rest, function) = s.rsplit_once('.').ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, device) = match parts.as_slice() {
            [d, b, v] => (*d, *b, *v),
            [b, v] => ("0", *b, *v),
            _ => return Err(bad()),
        };
        let hex16 = |x: &str, max: u32| {
            u32::from_str_radix(x, 16)
                .ok()
                .filter(|v| *v <= max && !x.is_empty() && x.len() <= 4)
        };
        Ok(PciAddr {
            domain: hex16(domain, 0xffff).ok_or_else(bad)? as u16,
            bus: hex16(bus, 0xff).ok_or_else(bad)? as u8,
            device: hex16(device, 0x1f).ok_or_else(bad)? as u8,
            function: hex16(function, 7).ok_or_else(bad)? as u8,
        })
    }
}

/// Why a device cannot be passed through (each says what to do).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VfioError {
    #[error("'{0}' is not a PCI address (want DDDD:BB:DD.F, e.g. 0000:03:00.0)")]
    BadAddress(String),
    #[error("no PCI device {0} on this host (lspci -D lists them)")]
    NoDevice(PciAddr),
    #[error(
        "{0} is in no IOMMU group: this host has no IOMMU, or it is off (enable VT-d/AMD-Vi in the firmware and boot with intel_iommu=on or amd_iommu=on)"
    )]
    NoIommu(PciAddr),
    #[error(
        "{addr} is bound to {}, not vfio-pci (echo {addr} > /sys/bus/pci/devices/{addr}/driver/unbind; echo vfio-pci > /sys/bus/pci/devices/{addr}/driver_override; echo {addr} > /sys/bus/pci/drivers_probe)",
        driver.as_deref().unwrap_or("no driver")
    )]
    NotVfioBound {
        addr: PciAddr,
        driver: Option<String>,
    },
    #[error("/dev/vfio/vfio is missing: load the VFIO modules (modprobe vfio-pci)")]
    NoVfio,
    #[error(
        "/dev/vfio/{0} is missing: IOMMU group {0} has no VFIO node (is every device of the group bound to vfio-pci?)"
    )]
    NoGroupNode(u32),
    #[error("DMA plan: {0}")]
    Plan(String),
}

/// A device ready to be opened through VFIO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    pub addr: PciAddr,
    /// Its IOMMU group.
    pub group: u32,
    /// The group's VFIO node.
    pub group_node: PathBuf,
}

/// Checks that `addr` can be passed through, against the sysfs tree at `sys` and the device
/// tree at `dev` (`/sys` and `/dev` on a host).
pub fn probe(sys: &Path, dev: &Path, addr: PciAddr) -> Result<Probed, VfioError> {
    let node = sys.join("bus/pci/devices").join(addr.to_string());
    if !node.exists() {
        return Err(VfioError::NoDevice(addr));
    }
    let group = std::fs::read_link(node.join("iommu_group"))
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse::<u32>().ok())
        .ok_or(VfioError::NoIommu(addr))?;
    let driver = std::fs::read_link(node.join("driver"))
        .ok()
        .and_then(|p| Some(p.file_name()?.to_str()?.to_string()));
    if driver.as_deref() != Some("vfio-pci") {
        return Err(VfioError::NotVfioBound { addr, driver });
    }
    if !dev.join("vfio/vfio").exists() {
        return Err(VfioError::NoVfio);
    }
    let group_node = dev.join("vfio").join(group.to_string());
    if !group_node.exists() {
        return Err(VfioError::NoGroupNode(group));
    }
    Ok(Probed {
        addr,
        group,
        group_node,
    })
}

/// One IOMMU mapping: `size` bytes of host memory at `host` seen by the device at `iova`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaMap {
    pub iova: u64,
    pub host: u64,
    pub size: u64,
}

/// A guest RAM region: guest-physical address, host virtual address, size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RamRegion {
    pub gpa: u64,
    pub host: u64,
    pub size: u64,
}

/// The mappings that let a passed-through device reach guest RAM at guest-physical addresses
/// (the guest's driver programs those into descriptors): IOVA = GPA for every region, in
/// address order, regions contiguous in both spaces merged (fewer IOMMU entries). Every
/// region must be non-empty and `page`-aligned in all three numbers, no two may overlap in
/// guest-physical space, and none may wrap.
pub fn dma_plan(regions: &[RamRegion], page: u64) -> Result<Vec<DmaMap>, VfioError> {
    if !page.is_power_of_two() {
        return Err(VfioError::Plan(format!(
            "page size {page} is not a power of two"
        )));
    }
    let mut rs = regions.to_vec();
    rs.sort_by_key(|r| r.gpa);
    let mut out: Vec<DmaMap> = Vec::with_capacity(rs.len());
    for r in &rs {
        if r.size == 0 {
            return Err(VfioError::Plan(format!("empty region at {:#x}", r.gpa)));
        }
        if (r.gpa | r.host | r.size) & (page - 1) != 0 {
            return Err(VfioError::Plan(format!(
                "region {:#x}+{:#x} (host {:#x}) is not {page}-byte aligned",
                r.gpa, r.size, r.host
            )));
        }
        if r.gpa.checked_add(r.size).is_none() || r.host.checked_add(r.size).is_none() {
            return Err(VfioError::Plan(format!(
                "region {:#x}+{:#x} wraps",
                r.gpa, r.size
            )));
        }
        match out.last_mut() {
            Some(m) if m.iova + m.size > r.gpa => {
                return Err(VfioError::Plan(format!("regions overlap at {:#x}", r.gpa)));
            }
            Some(m) if m.iova + m.size == r.gpa && m.host + m.size == r.host => m.size += r.size,
            _ => out.push(DmaMap {
                iova: r.gpa,
                host: r.host,
                size: r.size,
            }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> PciAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pci_addresses_parse_and_print() {
        assert_eq!(addr("0000:03:00.1").to_string(), "0000:03:00.1");
        assert_eq!(addr("3b:1f.7").to_string(), "0000:3b:1f.7");
        for bad in [
            "",
            "03:00",
            "0000:03:00.8",
            "0000:03:20.0",
            "x:03:00.0",
            "1:2:3:4.0",
            "00000:03:00.0",
        ] {
            assert_eq!(
                bad.parse::<PciAddr>(),
                Err(VfioError::BadAddress(bad.into())),
                "{bad}"
            );
        }
    }

    /// A fake /sys and /dev in a temporary directory.
    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str) -> Tree {
            let t = std::env::temp_dir().join(format!("ferrix-vfio-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&t);
            std::fs::create_dir_all(t.join("sys/bus/pci/devices")).unwrap();
            std::fs::create_dir_all(t.join("sys/kernel/iommu_groups")).unwrap();
            std::fs::create_dir_all(t.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
            std::fs::create_dir_all(t.join("sys/bus/pci/drivers/ixgbe")).unwrap();
            std::fs::create_dir_all(t.join("dev")).unwrap();
            Tree(t)
        }
        fn device(&self, a: &str) -> PathBuf {
            let d = self.0.join("sys/bus/pci/devices").join(a);
            std::fs::create_dir_all(&d).unwrap();
            d
        }
        fn sys(&self) -> PathBuf {
            self.0.join("sys")
        }
        fn dev(&self) -> PathBuf {
            self.0.join("dev")
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn each_missing_prerequisite_is_named_in_order() {
        use std::os::unix::fs::symlink;
        let t = Tree::new("order");
        let a = addr("0000:03:00.0");
        assert_eq!(probe(&t.sys(), &t.dev(), a), Err(VfioError::NoDevice(a)));
        let d = t.device("0000:03:00.0");
        assert_eq!(probe(&t.sys(), &t.dev(), a), Err(VfioError::NoIommu(a)));
        std::fs::create_dir_all(t.sys().join("kernel/iommu_groups/17")).unwrap();
        symlink(
            t.sys().join("kernel/iommu_groups/17"),
            d.join("iommu_group"),
        )
        .unwrap();
        assert_eq!(
            probe(&t.sys(), &t.dev(), a),
            Err(VfioError::NotVfioBound {
                addr: a,
                driver: None
            })
        );
        symlink(t.sys().join("bus/pci/drivers/ixgbe"), d.join("driver")).unwrap();
        let e = probe(&t.sys(), &t.dev(), a).unwrap_err();
        assert_eq!(
            e,
            VfioError::NotVfioBound {
                addr: a,
                driver: Some("ixgbe".into())
            }
        );
        assert!(e.to_string().contains("bound to ixgbe"), "{e}");
        std::fs::remove_file(d.join("driver")).unwrap();
        symlink(t.sys().join("bus/pci/drivers/vfio-pci"), d.join("driver")).unwrap();
        assert_eq!(probe(&t.sys(), &t.dev(), a), Err(VfioError::NoVfio));
        std::fs::create_dir_all(t.dev().join("vfio")).unwrap();
        std::fs::write(t.dev().join("vfio/vfio"), b"").unwrap();
        assert_eq!(
            probe(&t.sys(), &t.dev(), a),
            Err(VfioError::NoGroupNode(17))
        );
        std::fs::write(t.dev().join("vfio/17"), b"").unwrap();
        let p = probe(&t.sys(), &t.dev(), a).unwrap();
        assert_eq!(
            (p.group, p.group_node.clone()),
            (17, t.dev().join("vfio/17"))
        );
    }

    /// This machine has no IOMMU (`/sys/kernel/iommu_groups` is empty): probing any of its
    /// PCI devices fails with the IOMMU error, and a made-up address with "no device".
    #[test]
    fn on_this_host_the_error_names_the_missing_iommu() {
        let sys = Path::new("/sys");
        let groups = std::fs::read_dir(sys.join("kernel/iommu_groups"))
            .map(|d| d.count())
            .unwrap_or(0);
        let ghost = addr("fffe:ff:1f.7");
        assert_eq!(
            probe(sys, Path::new("/dev"), ghost),
            Err(VfioError::NoDevice(ghost))
        );
        let first = std::fs::read_dir(sys.join("bus/pci/devices"))
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok()?.file_name().to_str()?.parse::<PciAddr>().ok());
        match (groups, first) {
            (0, Some(a)) => {
                let e = probe(sys, Path::new("/dev"), a).unwrap_err();
                assert_eq!(e, VfioError::NoIommu(a));
                assert!(e.to_string().contains("intel_iommu=on"), "{e}");
            }
            (n, a) => eprintln!(
                "this host has {n} IOMMU groups and first PCI device {a:?}: the no-IOMMU path is covered by the fake tree only"
            ),
        }
    }

    #[test]
    fn guest_ram_maps_at_its_guest_physical_addresses() {
        let page = 4096;
        let r = |gpa: u64, host: u64, size: u64| RamRegion { gpa, host, size };
        // Below and above the PCI hole, given out of order; two pieces contiguous in both
        // spaces merge, a piece contiguous in GPA but not in host memory does not.
        let plan = dma_plan(
            &[
                r(0x1_0000_0000, 0x7f00_4000_0000, 0x4000_0000),
                r(0, 0x7f00_0000_0000, 0x2000_0000),
                r(0x2000_0000, 0x7f00_2000_0000, 0x1000_0000),
                r(0x3000_0000, 0x7e00_0000_0000, 0x1000),
            ],
            page,
        )
        .unwrap();
        assert_eq!(
            plan,
            [
                DmaMap {
                    iova: 0,
                    host: 0x7f00_0000_0000,
                    size: 0x3000_0000
                },
                DmaMap {
                    iova: 0x3000_0000,
                    host: 0x7e00_0000_0000,
                    size: 0x1000
                },
                DmaMap {
                    iova: 0x1_0000_0000,
                    host: 0x7f00_4000_0000,
                    size: 0x4000_0000
                },
            ]
        );
        let bad: &[(&[RamRegion], &str)] = &[
            (&[r(0, 0x1000, 0)], "empty"),
            (&[r(0x800, 0x1000, 0x1000)], "aligned"),
            (
                &[r(0, 0x1000, 0x2000), r(0x1000, 0x9000, 0x1000)],
                "overlap",
            ),
            (&[r(u64::MAX - 0xfff, 0, 0x2000)], "wraps"),
        ];
        for (regions, why) in bad {
            let e = dma_plan(regions, page).unwrap_err().to_string();
            assert!(e.contains(why), "{regions:?}: {e}");
        }
        assert!(dma_plan(&[], 3).is_err());
        assert_eq!(dma_plan(&[], page).unwrap(), []);
    }
}
