//! p4sim's errors: loading a program (syntax, types, unsupported constructs, each with the
//! source line and column), loading control-plane entries, and the packet path. None of them
//! is a panic: a hostile program or packet gets one of these.

use thiserror::Error;

/// Why a program did not load.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LoadError {
    /// The text is not in the grammar (pest's message names what it expected).
    #[error("{line}:{col}: syntax error: {msg}")]
    Syntax {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A name, type or width error.
    #[error("{line}:{col}: {msg}")]
    Type {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A P4_16 construct p4sim does not implement.
    #[error("{line}:{col}: unsupported: {what}")]
    Unsupported {
        line: usize,
        col: usize,
        what: String,
    },
    /// The program lacks something v1model needs (e.g. the `main` package).
    #[error("program: {0}")]
    Program(String),
}

/// Why a control-plane operation failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ControlError {
    #[error("no table {0}")]
    NoTable(String),
    #[error("no action {0} in table {1}")]
    NoAction(String, String),
    #[error("table {table}: {msg}")]
    BadEntry { table: String, msg: String },
    #[error("table {0} is full")]
    TableFull(String),
    #[error("no register {0}")]
    NoRegister(String),
    #[error("no counter {0}")]
    NoCounter(String),
    #[error("{name}: index {index} out of range (size {size})")]
    Index {
        name: String,
        index: usize,
        size: usize,
    },
    #[error("control file: {0}")]
    File(String),
}

/// Why a packet could not be processed. Malformed packets are not errors (the parser sets
/// `standard_metadata.parser_error` as v1model does); these are program faults hit at run
/// time, reported with the source position of the statement.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PacketError {
    #[error("{line}:{col}: {name}: index {index} out of range (size {size})")]
    Index {
        line: usize,
        col: usize,
        name: String,
        index: u128,
        size: usize,
    },
    #[error("{line}:{col}: {msg}")]
    Runtime {
        line: usize,
        col: usize,
        msg: String,
    },
    #[error("packet of {0} bytes exceeds the {1}-byte limit")]
    TooLong(usize, usize),
    #[error("more than {0} passes through the pipeline for one packet")]
    PassLimit(usize),
}
