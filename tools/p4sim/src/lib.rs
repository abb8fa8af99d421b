//! p4sim: an interpreter for the P4_16 subset of ferrix's in-network programs (`p4/`), on
//! the v1model architecture, so that those programs run in CI next to the Rust logic they
//! mirror (no P4 compiler or BMv2 on the project's machines).
//!
//! - [`lower`]: the pest grammar (`p4.pest`) and the lowering of its parse tree to [`ir`],
//!   with names resolved and widths checked; errors carry line and column.
//! - [`exec`]: expressions, statements, tables, externs, the parser state machine.
//! - [`switch`]: the v1model pipeline around them (drop, multicast, clone, recirculate).
//! - [`runtime`]: tables' entries, registers, counters, replication and clone state.
//! - [`control`]: control files (JSON) and their P4Runtime text form; [`control::jbsq`]
//!   builds the JBSQ router's, [`control::aggregator`] the HovercRaft++ aggregator's and
//!   [`control::sven`] SVEN's (with its control loop), [`control::slog`] the SLOG load
//!   generator's (from a TOML experiment file; [`control::slog_run`] runs one).
//! - [`hub`]: a program as the switch between ferrix VMs (the shim's `switch:DIR`).
//! - [`fuzzing`]: the fuzz targets' packet-path harnesses (also run by a bounded test).
//!
//! The subset, and what is rejected, is listed in `p4/README.md`.
#![forbid(unsafe_code)]

pub mod bits;
pub mod control;
pub mod error;
pub mod exec;
pub mod externs;
pub mod fuzzing;
pub mod hub;
pub mod ir;
pub mod lower;
pub mod runtime;
pub mod switch;

pub use error::{ControlError, LoadError, PacketError};
pub use switch::{Output, Recirculated, Switch};
