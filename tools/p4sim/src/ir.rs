//! The program p4sim runs: the P4 source lowered to a tree with every name resolved. Scalars
//! (header fields, metadata, locals, action parameters) live in numbered slots of one flat
//! array; headers are field-slot lists with a validity bit; tables, actions, registers and
//! counters are numbered. Widths are checked while lowering (`lower`), so the interpreter
//! (`exec`) only masks.

/// Index of a scalar in `Env::slots`.
pub type Slot = usize;
/// Index of a header instance in `Program::headers`.
pub type HdrId = usize;
/// Index of an action / table / register / counter / header stack.
pub type ActionId = usize;
pub type TableId = usize;
pub type RegId = usize;
pub type CtrId = usize;
pub type StackId = usize;

/// Source position (1-based line and column) for runtime errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// `bit<N>`, 1 <= N <= 128.
    Bit(u16),
    Bool,
    /// An unsized integer literal or constant (takes the width of what it meets).
    Int,
    /// The `error` type.
    Error,
    /// A member of the enum with this index.
    Enum(usize),
}

impl Ty {
    /// Bits a value of this type occupies in a slot (Int: 128).
    pub fn width(self) -> u16 {
        match self {
            Ty::Bit(w) => w,
            Ty::Bool => 1,
            Ty::Int => 128,
            Ty::Error | Ty::Enum(_) => 32,
        }
    }
}

/// All ones in the low `w` bits.
#[inline]
pub fn mask(w: u16) -> u128 {
    if w >= 128 {
        u128::MAX
    } else {
        (1u128 << w) - 1
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    SatAdd,
    SatSub,
    And,
    Or,
    Xor,
    Shl,
    Shr,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LAnd,
    LOr,
}

/// An expression. `w` fields are the result width used for masking.
#[derive(Clone, Debug)]
pub enum Expr {
    Const(u128),
    Slot(Slot),
    Valid(HdrId),
    Not(Box<Expr>),
    BNot(Box<Expr>, u16),
    Neg(Box<Expr>, u16),
    Bin(BinOp, Box<Expr>, Box<Expr>, u16),
    /// `e[lo + w - 1 : lo]`.
    Slice(Box<Expr>, u16, u16),
    /// `a ++ b`; the u16 is b's width.
    Concat(Box<Expr>, Box<Expr>, u16),
    /// Truncate / zero-extend to the width.
    Cast(Box<Expr>, u16),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `t.apply().hit` (true) or `.miss` (false): applies the table.
    TableHit(TableId, bool),
}

/// Where an assignment writes: bits `lo .. lo + w` of a slot of width `full`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LVal {
    pub slot: Slot,
    pub lo: u16,
    pub w: u16,
    pub full: u16,
}

/// Hash and checksum algorithms (v1model's `HashAlgorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Crc32,
    Crc16,
    Identity,
    Csum16,
    Xor16,
    Random,
}

/// v1model extern calls.
#[derive(Clone, Debug)]
pub enum Ext {
    RegRead {
        reg: RegId,
        dst: LVal,
        idx: Expr,
    },
    RegWrite {
        reg: RegId,
        idx: Expr,
        val: Expr,
    },
    Count {
        ctr: CtrId,
        idx: Expr,
    },
    MarkToDrop,
    Hash {
        dst: LVal,
        algo: Algo,
        base: Expr,
        data: Vec<(Expr, u16)>,
        max: Expr,
    },
    Random {
        dst: LVal,
        lo: Expr,
        hi: Expr,
    },
    /// `recirculate_preserving_field_list(n)`.
    Recirculate(u8),
    /// `clone` (no field list) / `clone_preserving_field_list`; `e2e`: CloneType.E2E.
    Clone {
        e2e: bool,
        session: Expr,
        field_list: Option<u8>,
    },
    Truncate(Expr),
    UpdateChecksum {
        cond: Expr,
        data: Vec<(Expr, u16)>,
        dst: LVal,
        algo: Algo,
    },
    VerifyChecksum {
        cond: Expr,
        data: Vec<(Expr, u16)>,
        sum: Expr,
        sum_w: u16,
        algo: Algo,
    },
    /// `pkt.emit(...)`: these headers, in order, if valid.
    Emit(Vec<HdrId>),
    /// `pkt.extract(h)` (parser).
    Extract(HdrId),
    /// `pkt.extract(stack.next)`.
    ExtractNext(StackId),
    /// `pkt.advance(bits)`.
    Advance(Expr),
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Assign(LVal, Expr),
    /// `a = b` for headers (validity and fields).
    CopyHeader(HdrId, HdrId),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    Apply(TableId),
    /// `switch (t.apply().action_run)`: arms by action (None: default).
    Switch(TableId, Vec<(Option<ActionId>, Vec<Stmt>)>),
    Call(ActionId, Vec<Expr>),
    SetValid(HdrId, bool),
    Exit,
    Return,
    Ext(Ext, Pos),
}

/// A header type.
#[derive(Clone, Debug)]
pub struct HeaderType {
    pub name: String,
    pub fields: Vec<(String, u16)>,
    pub bits: u32,
}

/// A header instance: its type and one slot per field.
#[derive(Clone, Debug)]
pub struct Header {
    pub name: String,
    pub ty: usize,
    pub slots: Vec<Slot>,
}

/// A header stack: its element headers; the `next` counter lives in `Env::next`.
#[derive(Clone, Debug)]
pub struct Stack {
    pub name: String,
    pub elems: Vec<HdrId>,
}

#[derive(Clone, Debug)]
pub struct Action {
    /// Qualified (`Control.action`, or `NoAction`).
    pub name: String,
    pub params: Vec<(String, Slot, u16)>,
    pub body: Vec<Stmt>,
    /// `@id(..)` annotation.
    pub id: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchKind {
    Exact,
    Ternary,
    Lpm,
    Range,
    Optional,
}

#[derive(Clone, Debug)]
pub struct Key {
    /// The key expression's text (P4Runtime's match field name, e.g. `hdr.ipv4.dstAddr`).
    pub name: String,
    pub expr: Expr,
    pub kind: MatchKind,
    pub width: u16,
}

#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub keys: Vec<Key>,
    pub actions: Vec<ActionId>,
    pub default_action: ActionId,
    pub default_args: Vec<u128>,
    pub const_default: bool,
    pub size: usize,
    pub id: Option<u32>,
}

#[derive(Clone, Debug)]
pub struct Register {
    pub name: String,
    pub width: u16,
    pub size: usize,
    pub id: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterKind {
    Packets,
    Bytes,
    Both,
}

#[derive(Clone, Debug)]
pub struct Counter {
    pub name: String,
    pub size: usize,
    pub kind: CounterKind,
    pub id: Option<u32>,
}

/// A parser transition.
#[derive(Clone, Debug)]
pub enum Trans {
    Accept,
    Reject,
    State(usize),
    Select(Vec<Expr>, Vec<(Vec<KeyElem>, Target)>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Accept,
    Reject,
    State(usize),
}

/// One element of a select case's keyset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyElem {
    Any,
    Value(u128),
    Mask(u128, u128),
    Range(u128, u128),
}

#[derive(Clone, Debug)]
pub struct State {
    pub name: String,
    pub body: Vec<Stmt>,
    pub trans: Trans,
}

/// The standard_metadata fields the architecture reads and writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdMeta {
    pub ingress_port: Slot,
    pub egress_spec: Slot,
    pub egress_port: Slot,
    pub instance_type: Slot,
    pub packet_length: Slot,
    pub ingress_global_timestamp: Slot,
    pub egress_global_timestamp: Slot,
    pub enq_timestamp: Slot,
    pub mcast_grp: Slot,
    pub egress_rid: Slot,
    pub checksum_error: Slot,
    pub parser_error: Slot,
}

/// A lowered v1model program.
#[derive(Clone, Debug)]
pub struct Program {
    pub slot_count: usize,
    pub header_types: Vec<HeaderType>,
    pub headers: Vec<Header>,
    pub stacks: Vec<Stack>,
    pub actions: Vec<Action>,
    pub tables: Vec<Table>,
    pub registers: Vec<Register>,
    pub counters: Vec<Counter>,
    pub states: Vec<State>,
    /// Index of `start` in `states`.
    pub start: usize,
    pub verify: Vec<Stmt>,
    pub ingress: Vec<Stmt>,
    pub egress: Vec<Stmt>,
    pub compute: Vec<Stmt>,
    pub deparser: Vec<Stmt>,
    /// User metadata slots with the field lists (`@field_list(..)`) each belongs to.
    pub meta_slots: Vec<(Slot, Vec<u8>)>,
    /// Every slot of the user metadata struct, by path (`meta.x.y`), for inspection.
    pub meta_names: Vec<(String, Slot)>,
    pub sm: StdMeta,
    /// Members of the `error` type, in order (value = index).
    pub errors: Vec<String>,
}

impl Program {
    pub fn table(&self, name: &str) -> Option<TableId> {
        find_name(self.tables.iter().map(|t| t.name.as_str()), name)
    }
    pub fn action(&self, name: &str) -> Option<ActionId> {
        find_name(self.actions.iter().map(|a| a.name.as_str()), name)
    }
    pub fn register(&self, name: &str) -> Option<RegId> {
        find_name(self.registers.iter().map(|r| r.name.as_str()), name)
    }
    pub fn counter(&self, name: &str) -> Option<CtrId> {
        find_name(self.counters.iter().map(|c| c.name.as_str()), name)
    }
    /// The slot of a user metadata field by its path below the metadata struct (`x.y`).
    pub fn meta(&self, path: &str) -> Option<Slot> {
        self.meta_names
            .iter()
            .find(|(n, _)| n == path)
            .map(|&(_, s)| s)
    }
    /// The value of `error.<name>`.
    pub fn error_code(&self, name: &str) -> Option<u128> {
        self.errors
            .iter()
            .position(|e| e == name)
            .map(|i| i as u128)
    }
}

/// Index of `name` among qualified `names`: an exact match, else the one name whose last
/// component is `name`.
fn find_name<'a>(names: impl Iterator<Item = &'a str> + Clone, name: &str) -> Option<usize> {
    if let Some(i) = names.clone().position(|n| n == name) {
        return Some(i);
    }
    let mut hits = names
        .enumerate()
        .filter(|(_, n)| n.rsplit('.').next() == Some(name));
    match (hits.next(), hits.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}
