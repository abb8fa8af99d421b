//! ferrix-sched: the ZygOS scheduler of ferrix (thesis chapter 6), as pure logic.
//!
//! Every core polls its own NIC queue and is the *home core* of the flows RSS sends it. TCP
//! input on the home core turns packets into events and marks flows ready on the home core's
//! [`ShuffleQueue`]; the home core, or any idle core (a *thief*), takes a ready flow and owns it
//! exclusively ([`FlowState`], figure 6.5) until its calls have run. A thief's calls go back to
//! the home core through its [`RemoteQueue`], because a connection's TCP state is touched only
//! there. [`idle::next_action`] is the per-core loop in the thesis's order; [`ipi`] says when to
//! interrupt a core busy in application code; [`Policy`] switches between ZygOS, its
//! cooperative variant and IX-like partitioning. [`Sched`] ties these together for the kernel.
//!
//! Everything shared between cores is an atomic or a short spinlock from [`sync`], which
//! `--cfg loom` swaps for loom's model-checked versions (the `loom_*` tests). There is no
//! `unsafe` here and no hardware: the kernel supplies time ([`ipi::Clock`]), packet queue state
//! ([`PacketView`]) and sends the IPIs.
#![cfg_attr(not(any(test, loom)), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod flow;
pub mod flow_id;
pub mod idle;
pub mod ipi;
pub mod overflow;
pub mod policy;
pub mod remote;
pub mod sched;
pub mod shuffle;
mod sync;

pub use flow::{FlowState, State, Transition};
pub use flow_id::{CoreId, FlowId};
pub use overflow::Overflow;
pub use policy::Policy;
pub use remote::{RemoteBatch, RemoteQueue};
pub use sched::{Claim, Config, CoreShared, HomeCore, PacketView, Sched, View};
pub use shuffle::{Full, ShuffleQueue};
