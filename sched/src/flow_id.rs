//! Flow and core identifiers.
//!
//! A [`FlowId`] names a flow by its home core and its slot in that core's flow table, packed in
//! a `u32` so it fits one atomic cell of a shuffle queue: 8 bits of core (up to
//! [`MAX_CORES`]) and 24 bits of slot (up to [`MAX_FLOWS_PER_CORE`], far above the >= 10,000
//! connections per VM the issue asks for). RSS fixes a connection's home core for its lifetime,
//! so the home core never changes while the id is in use.

/// Most cores the scheduler addresses.
pub const MAX_CORES: usize = 1 << CORE_BITS;
/// Most flows one core can be home to.
pub const MAX_FLOWS_PER_CORE: usize = 1 << SLOT_BITS;

const CORE_BITS: u32 = 8;
const SLOT_BITS: u32 = 24;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

/// A core, numbered from 0 like the kernel's per-CPU areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoreId(pub u8);

impl CoreId {
    /// The index into per-core arrays.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A flow: its home core and its slot in that core's flow table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowId(u32);

impl FlowId {
    /// The flow in `slot` of `home`'s table. `None` if `slot` does not fit in 24 bits.
    pub fn new(home: CoreId, slot: u32) -> Option<Self> {
        (slot <= SLOT_MASK).then_some(Self((u32::from(home.0) << SLOT_BITS) | slot))
    }

    /// The core whose NIC queue receives this flow's packets.
    pub fn home(self) -> CoreId {
        CoreId((self.0 >> SLOT_BITS) as u8)
    }

    /// The slot in the home core's flow table.
    pub fn slot(self) -> u32 {
        self.0 & SLOT_MASK
    }

    /// The packed form stored in shuffle queues.
    pub fn to_raw(self) -> u32 {
        self.0
    }

    /// The inverse of [`Self::to_raw`].
    pub fn from_raw(raw: u32) -> Self {
        Self(raw)
    }
}
