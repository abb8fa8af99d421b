//! Lowering: pest's parse tree of a v1model program to the resolved tree of `ir`. This file
//! holds the declarations (types, constants, parsers, controls, tables, externs, the `main`
//! package); `expr.rs` the expressions and statements. Every error carries the line and
//! column of the construct it is about.

mod expr;

use crate::error::LoadError;
use crate::ir::*;
use pest::Parser;
use pest::iterators::Pair;
use std::collections::HashMap;

#[derive(pest_derive::Parser)]
#[grammar = "p4.pest"]
pub struct P4Parser;

pub(crate) type P<'a> = Pair<'a, Rule>;

const PRELUDE: &str = include_str!("../prelude.p4");

/// Deepest bracket nesting accepted (deeper programs are refused before parsing, so
/// neither the parser nor the interpreter can run out of stack).
pub const MAX_NESTING: usize = 32;
/// Largest program text accepted.
pub const MAX_SOURCE: usize = 1 << 20;
/// Most operands of one chain of infix operators (`a + b + ...`).
pub const MAX_OPERANDS: usize = 64;
/// Deepest statement nesting (`if (a) if (b) ...`).
pub const MAX_STMT_DEPTH: usize = 64;

/// Parses and lowers a v1model program. Parsing runs on a thread of its own with a large
/// stack: pest recurses once per nesting level of the text.
pub fn load(src: &str) -> Result<Program, LoadError> {
    if src.len() > MAX_SOURCE {
        return Err(LoadError::Program(format!(
            "program of {} bytes (at most {MAX_SOURCE})",
            src.len()
        )));
    }
    guard_nesting(src)?;
    guard_includes(src)?;
    let owned = src.to_string();
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || load_here(&owned))
        .map_err(|e| LoadError::Program(format!("cannot start the parser thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(LoadError::Program("the parser failed".into())))
}

/// Refuses a preprocessor line other than the two v1model includes before parsing, so that
/// a program for another architecture (e.g. `#include <tna.p4>`) is named as such at its
/// include, not by the first syntax error in its body. Lines inside `/* */` comments are
/// skipped.
fn guard_includes(src: &str) -> Result<(), LoadError> {
    let mut in_comment = false;
    for (n, line) in src.lines().enumerate() {
        let starts_in_comment = in_comment;
        let mut rest = line;
        loop {
            let open = if in_comment { "*/" } else { "/*" };
            match rest.find(open) {
                Some(i) => {
                    in_comment = !in_comment;
                    rest = &rest[i + 2..];
                }
                None => break,
            }
        }
        let t = line.trim_start();
        if starts_in_comment || !t.starts_with('#') {
            continue;
        }
        let words = t.split_whitespace().collect::<Vec<_>>().join(" ");
        if words != "#include <core.p4>" && words != "#include <v1model.p4>" {
            let what = if words.starts_with("#include") {
                format!(
                    "{words}: p4sim runs v1model programs only (#include <core.p4> / <v1model.p4>)"
                )
            } else {
                format!("preprocessor line `{words}` (only #include <core.p4> / <v1model.p4>)")
            };
            return Err(LoadError::Unsupported {
                line: n + 1,
                col: line.len() - t.len() + 1,
                what,
            });
        }
    }
    Ok(())
}

/// Refuses bracket nesting deeper than `MAX_NESTING` and `else` chains longer than
/// `MAX_STMT_DEPTH`, with the position.
fn guard_nesting(src: &str) -> Result<(), LoadError> {
    let (mut depth, mut line, mut col, mut elses) = (0usize, 1usize, 0usize, 0usize);
    let b = src.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        col += 1;
        match c {
            b'\n' => {
                line += 1;
                col = 0;
            }
            b'(' | b'{' | b'[' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(LoadError::Unsupported {
                        line,
                        col,
                        what: format!("nesting deeper than {MAX_NESTING}"),
                    });
                }
            }
            b')' | b'}' | b']' => depth = depth.saturating_sub(1),
            b'e' if b[i..].starts_with(b"else") => {
                elses += 1;
                if elses > 64 * MAX_STMT_DEPTH {
                    return Err(LoadError::Unsupported {
                        line,
                        col,
                        what: "more than 4096 else branches".into(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn load_here(src: &str) -> Result<Program, LoadError> {
    let mut l = Lowerer::default();
    let prelude = parse(PRELUDE)?;
    l.decls(prelude, false)?;
    let user = parse(src)?;
    l.decls(user, true)?;
    l.finish()
}

fn parse(src: &str) -> Result<P<'_>, LoadError> {
    let mut pairs = P4Parser::parse(Rule::program, src).map_err(|e| {
        let (line, col) = match e.line_col {
            pest::error::LineColLocation::Pos(p) => p,
            pest::error::LineColLocation::Span(p, _) => p,
        };
        LoadError::Syntax {
            line,
            col,
            msg: e.variant.message().into_owned(),
        }
    })?;
    pairs
        .next()
        .ok_or_else(|| LoadError::Program("empty parse".into()))
}

pub(crate) fn type_err(p: &P, msg: impl Into<String>) -> LoadError {
    let (line, col) = p.line_col();
    LoadError::Type {
        line,
        col,
        msg: msg.into(),
    }
}

pub(crate) fn unsupported(p: &P, what: impl Into<String>) -> LoadError {
    let (line, col) = p.line_col();
    LoadError::Unsupported {
        line,
        col,
        what: what.into(),
    }
}

pub(crate) fn pos(p: &P) -> Pos {
    let (line, col) = p.line_col();
    Pos { line, col }
}

/// A named type.
#[derive(Clone, Debug)]
pub(crate) enum TypeDef {
    Scalar(Ty),
    Header(usize),
    Struct(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct FieldDef {
    name: String,
    ty: TypeDef,
    stack: Option<usize>,
    field_lists: Vec<u8>,
}

#[derive(Clone, Debug)]
pub(crate) struct StructDef {
    _name: String,
    fields: Vec<FieldDef>,
}

/// Storage a name refers to.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    Scalar(Slot, Ty),
    Header(HdrId),
    Stack(StackId),
    Struct(Vec<(String, Place)>),
}

/// What a name means in a scope.
#[derive(Clone, Debug)]
pub(crate) enum Binding {
    Place(Place),
    Const(u128, Ty),
    Action(ActionId),
    Table(TableId),
    Reg(RegId),
    Ctr(CtrId),
    PacketIn,
    PacketOut,
    /// An enum type's name (its members are `Name.member`).
    EnumType(usize),
}

#[derive(Default)]
pub(crate) struct Lowerer<'a> {
    pub(crate) prog: ProgramBuilder,
    types: HashMap<String, TypeDef>,
    structs: Vec<StructDef>,
    pub(crate) enums: Vec<(String, Vec<String>)>,
    pub(crate) scopes: Vec<HashMap<String, Binding>>,
    /// Parsers and controls by name, lowered once `main` says which is which.
    blocks: Vec<(String, P<'a>)>,
    main: Option<(String, Vec<String>, Pos)>,
    /// Name of the control being lowered (qualifies actions and tables).
    pub(crate) control: String,
    pub(crate) states: HashMap<String, usize>,
    /// Statement nesting while lowering.
    pub(crate) depth: usize,
}

/// The parts of a `Program` filled while lowering.
#[derive(Default)]
pub(crate) struct ProgramBuilder {
    pub(crate) slot_count: usize,
    pub(crate) slot_ty: Vec<Ty>,
    pub(crate) header_types: Vec<HeaderType>,
    pub(crate) headers: Vec<Header>,
    pub(crate) stacks: Vec<Stack>,
    pub(crate) actions: Vec<Action>,
    pub(crate) tables: Vec<Table>,
    pub(crate) registers: Vec<Register>,
    pub(crate) counters: Vec<Counter>,
    pub(crate) errors: Vec<String>,
}

impl ProgramBuilder {
    pub(crate) fn slot(&mut self, ty: Ty) -> Slot {
        self.slot_count += 1;
        self.slot_ty.push(ty);
        self.slot_count - 1
    }
}

/// `@name(body)` annotations of a declaration.
fn annotations(p: &P) -> Vec<(String, String)> {
    p.clone()
        .into_inner()
        .filter(|c| c.as_rule() == Rule::annotation)
        .map(|a| {
            let mut it = a.into_inner();
            let n = it
                .next()
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            let b = it.next().map(|b| b.as_str().trim().to_string());
            (n, b.unwrap_or_default())
        })
        .collect()
}

fn id_annotation(p: &P) -> Result<Option<u32>, LoadError> {
    for (n, b) in annotations(p) {
        if n == "id" {
            return parse_u32(&b)
                .map(Some)
                .ok_or_else(|| type_err(p, format!("@id({b}): not a number")));
        }
    }
    Ok(None)
}

fn parse_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The children of `p` that are not annotations.
pub(crate) fn body<'a>(p: &P<'a>) -> Vec<P<'a>> {
    p.clone()
        .into_inner()
        .filter(|c| c.as_rule() != Rule::annotation)
        .collect()
}

impl<'a> Lowerer<'a> {
    pub(crate) fn lookup(&self, name: &str) -> Option<&Binding> {
        self.scopes.iter().rev().find_map(|s| s.get(name))
    }

    pub(crate) fn bind(&mut self, name: &str, b: Binding) {
        if self.scopes.is_empty() {
            self.scopes.push(HashMap::new());
        }
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_string(), b);
        }
    }

    fn decls(&mut self, prog: P<'a>, user: bool) -> Result<(), LoadError> {
        if self.scopes.is_empty() {
            self.scopes.push(HashMap::new());
            let id = self.prog.actions.len();
            self.prog.actions.push(Action {
                name: "NoAction".into(),
                params: vec![],
                body: vec![],
                id: None,
            });
            self.bind("NoAction", Binding::Action(id));
        }
        for d in prog.into_inner() {
            match d.as_rule() {
                Rule::EOI => {}
                Rule::preproc => {
                    let t = d.as_str().split_whitespace().collect::<Vec<_>>().join(" ");
                    if !(t == "#include <core.p4>" || t == "#include <v1model.p4>") {
                        return Err(unsupported(
                            &d,
                            format!(
                                "preprocessor line `{t}` (only #include <core.p4> / <v1model.p4>)"
                            ),
                        ));
                    }
                }
                Rule::const_decl => {
                    let (n, b) = self.const_decl(&d)?;
                    self.bind(&n, b);
                }
                Rule::typedef_decl => {
                    let b = body(&d);
                    let t = self.type_ref(&b[0])?;
                    self.types.insert(b[1].as_str().to_string(), t);
                }
                Rule::header_decl => self.header_decl(&d)?,
                Rule::struct_decl => {
                    let b = body(&d);
                    let name = b[0].as_str().to_string();
                    let fields = b[1..]
                        .iter()
                        .map(|f| self.field(f))
                        .collect::<Result<Vec<_>, _>>()?;
                    self.structs.push(StructDef {
                        _name: name.clone(),
                        fields,
                    });
                    self.types
                        .insert(name, TypeDef::Struct(self.structs.len() - 1));
                }
                Rule::error_decl => {
                    for m in d.into_inner() {
                        self.prog.errors.push(m.as_str().to_string());
                    }
                }
                Rule::enum_decl => {
                    let b = body(&d);
                    if b[0].as_rule() == Rule::bit_type {
                        return Err(unsupported(&d, "serializable enums (enum bit<N> ...)"));
                    }
                    let name = b[0].as_str().to_string();
                    let mut members = vec![];
                    for m in &b[1..] {
                        let mm = m.clone().into_inner().collect::<Vec<_>>();
                        if mm.len() > 1 {
                            return Err(unsupported(m, "enum member values"));
                        }
                        members.push(mm[0].as_str().to_string());
                    }
                    self.enums.push((name.clone(), members));
                    let id = self.enums.len() - 1;
                    self.types
                        .insert(name.clone(), TypeDef::Scalar(Ty::Enum(id)));
                    self.bind(&name, Binding::EnumType(id));
                }
                Rule::extern_decl => return Err(unsupported(&d, "extern declarations")),
                Rule::header_union => return Err(unsupported(&d, "header unions")),
                Rule::parser_decl | Rule::control_decl if user => {
                    let name = body(&d)[0].as_str().to_string();
                    self.blocks.push((name, d));
                }
                Rule::package_inst if user => {
                    let b = body(&d);
                    let ctors = b[1]
                        .clone()
                        .into_inner()
                        .map(|c| c.into_inner().as_str().to_string())
                        .collect();
                    self.main = Some((b[0].as_str().to_string(), ctors, pos(&d)));
                }
                _ => return Err(unsupported(&d, format!("{:?}", d.as_rule()))),
            }
        }
        Ok(())
    }

    fn header_decl(&mut self, d: &P) -> Result<(), LoadError> {
        let b = body(d);
        let name = b[0].as_str().to_string();
        let mut fields = vec![];
        let mut bits = 0u32;
        for f in &b[1..] {
            let fd = self.field(f)?;
            match (fd.ty, fd.stack) {
                (TypeDef::Scalar(Ty::Bit(w)), None) => {
                    bits += u32::from(w);
                    fields.push((fd.name, w));
                }
                _ => return Err(type_err(f, "header fields must be bit<N>")),
            }
        }
        if !bits.is_multiple_of(8) {
            return Err(type_err(
                d,
                format!("header {name} is {bits} bits, not a whole number of bytes"),
            ));
        }
        self.prog.header_types.push(HeaderType {
            name: name.clone(),
            fields,
            bits,
        });
        self.types
            .insert(name, TypeDef::Header(self.prog.header_types.len() - 1));
        Ok(())
    }

    fn field(&mut self, f: &P) -> Result<FieldDef, LoadError> {
        let mut field_lists = vec![];
        for (n, b) in annotations(f) {
            if n == "field_list" {
                for x in b.split(',') {
                    let v = parse_u32(x)
                        .and_then(|v| u8::try_from(v).ok())
                        .ok_or_else(|| type_err(f, format!("@field_list({b})")))?;
                    field_lists.push(v);
                }
            }
        }
        let b = body(f);
        let ty = self.type_ref(&b[0])?;
        let (stack, name) = if b.len() == 3 {
            let n = expr::int_text(b[1].clone().into_inner().as_str(), &b[1])?.0;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| (1..=256).contains(&n))
                .ok_or_else(|| type_err(&b[1], "stack size must be 1..=256"))?;
            if !matches!(ty, TypeDef::Header(_)) {
                return Err(type_err(f, "only headers can be stacked"));
            }
            (Some(n), b[2].as_str())
        } else {
            (None, b[1].as_str())
        };
        Ok(FieldDef {
            name: name.to_string(),
            ty,
            stack,
            field_lists,
        })
    }

    pub(crate) fn type_ref(&self, t: &P) -> Result<TypeDef, LoadError> {
        let inner = t
            .clone()
            .into_inner()
            .next()
            .ok_or_else(|| type_err(t, "type"))?;
        match inner.as_rule() {
            Rule::bit_type => {
                let lit = inner.clone().into_inner().as_str().to_string();
                let (w, _) = expr::int_text(&lit, &inner)?;
                if !(1..=128).contains(&w) {
                    return Err(unsupported(&inner, format!("bit<{w}> (widths 1..=128)")));
                }
                Ok(TypeDef::Scalar(Ty::Bit(w as u16)))
            }
            Rule::bool_type => Ok(TypeDef::Scalar(Ty::Bool)),
            Rule::signed_type => Err(unsupported(
                &inner,
                format!("type {} (only bit<N> and bool)", inner.as_str()),
            )),
            _ => {
                let n = inner.as_str();
                if n == "error" {
                    return Ok(TypeDef::Scalar(Ty::Error));
                }
                self.types
                    .get(n)
                    .cloned()
                    .ok_or_else(|| type_err(&inner, format!("unknown type {n}")))
            }
        }
    }

    /// Allocates storage for a value of type `t` named `path`; user metadata fields are
    /// recorded in `meta` with their field lists.
    fn alloc(
        &mut self,
        t: &TypeDef,
        path: &str,
        lists: &[u8],
        meta: &mut Option<&mut Vec<(String, Slot, Vec<u8>)>>,
    ) -> Place {
        match t {
            TypeDef::Scalar(ty) => {
                let s = self.prog.slot(*ty);
                if let Some(m) = meta.as_mut() {
                    m.push((path.to_string(), s, lists.to_vec()));
                }
                Place::Scalar(s, *ty)
            }
            TypeDef::Header(h) => Place::Header(self.alloc_header(*h, path)),
            TypeDef::Struct(s) => {
                let def = self.structs[*s].clone();
                let mut members = vec![];
                for f in &def.fields {
                    let p = format!("{path}.{}", f.name);
                    let mut l = lists.to_vec();
                    l.extend_from_slice(&f.field_lists);
                    let place = match (f.stack, &f.ty) {
                        (Some(n), TypeDef::Header(h)) => {
                            let elems = (0..n)
                                .map(|i| self.alloc_header(*h, &format!("{p}[{i}]")))
                                .collect();
                            self.prog.stacks.push(Stack { name: p, elems });
                            Place::Stack(self.prog.stacks.len() - 1)
                        }
                        _ => self.alloc(&f.ty, &p, &l, meta),
                    };
                    members.push((f.name.clone(), place));
                }
                Place::Struct(members)
            }
        }
    }

    fn alloc_header(&mut self, h: usize, path: &str) -> HdrId {
        let fields = self.prog.header_types[h].fields.clone();
        let slots = fields
            .iter()
            .map(|&(_, w)| self.prog.slot(Ty::Bit(w)))
            .collect();
        self.prog.headers.push(Header {
            name: path.to_string(),
            ty: h,
            slots,
        });
        self.prog.headers.len() - 1
    }

    pub(crate) fn const_decl(&mut self, d: &P) -> Result<(String, Binding), LoadError> {
        let b = body(d);
        let ty = match self.type_ref(&b[0])? {
            TypeDef::Scalar(t) => t,
            _ => return Err(unsupported(d, "constants of header or struct type")),
        };
        let (e, et) = self.expr(&b[2])?;
        let e = self.coerce(e, et, ty, &b[2])?;
        let v = expr::const_eval(&e).ok_or_else(|| type_err(&b[2], "not a constant"))?;
        Ok((b[1].as_str().to_string(), Binding::Const(v, ty)))
    }

    fn finish(mut self) -> Result<Program, LoadError> {
        let Some((pkg, ctors, ppos)) = self.main.clone() else {
            return Err(LoadError::Program(
                "no package instantiation (V1Switch(...) main;)".into(),
            ));
        };
        if pkg != "V1Switch" || ctors.len() != 6 {
            return Err(LoadError::Unsupported {
                line: ppos.line,
                col: ppos.col,
                what: format!(
                    "package {pkg} with {} blocks (only V1Switch with 6)",
                    ctors.len()
                ),
            });
        }
        let blocks = std::mem::take(&mut self.blocks);
        let find = |name: &str| -> Result<P<'a>, LoadError> {
            blocks
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| LoadError::Program(format!("no parser or control named {name}")))
        };
        let parser_pair = find(&ctors[0])?;
        if parser_pair.as_rule() != Rule::parser_decl {
            return Err(type_err(
                &parser_pair,
                "the first V1Switch block must be a parser",
            ));
        }
        // H and M from the parser's parameters (packet_in, out H, inout M, inout sm).
        let params = self.param_types(&parser_pair)?;
        if params.len() != 4 {
            return Err(type_err(
                &parser_pair,
                "a v1model parser takes (packet_in, out H, inout M, inout standard_metadata_t)",
            ));
        }
        let h_name = params[1].clone();
        let m_name = params[2].clone();
        let lookup_ty = |l: &Lowerer<'a>, n: &str| {
            l.types
                .get(n)
                .cloned()
                .ok_or_else(|| LoadError::Program(format!("unknown type {n}")))
        };
        let h_ty = lookup_ty(&self, &h_name)?;
        let m_ty = lookup_ty(&self, &m_name)?;
        let sm_ty = lookup_ty(&self, "standard_metadata_t")?;
        let hdr = self.alloc(&h_ty, "hdr", &[], &mut None);
        let mut meta_list = vec![];
        let meta = self.alloc(&m_ty, "meta", &[], &mut Some(&mut meta_list));
        let sm = self.alloc(&sm_ty, "standard_metadata", &[], &mut None);
        let globals = Globals {
            h_name,
            m_name,
            hdr,
            meta,
            sm: sm.clone(),
        };
        let (states, start) = self.parser(&parser_pair, &globals)?;
        let mut bodies = vec![];
        for c in &ctors[1..] {
            let pair = find(c)?;
            if pair.as_rule() != Rule::control_decl {
                return Err(type_err(
                    &pair,
                    format!("V1Switch block {c} must be a control"),
                ));
            }
            bodies.push(self.control_block(&pair, &globals)?);
        }
        let smf = |n: &str| -> Slot {
            if let Place::Struct(m) = &sm {
                for (f, p) in m {
                    if f == n
                        && let Place::Scalar(s, _) = p
                    {
                        return *s;
                    }
                }
            }
            0
        };
        let std_meta = StdMeta {
            ingress_port: smf("ingress_port"),
            egress_spec: smf("egress_spec"),
            egress_port: smf("egress_port"),
            instance_type: smf("instance_type"),
            packet_length: smf("packet_length"),
            ingress_global_timestamp: smf("ingress_global_timestamp"),
            egress_global_timestamp: smf("egress_global_timestamp"),
            enq_timestamp: smf("enq_timestamp"),
            mcast_grp: smf("mcast_grp"),
            egress_rid: smf("egress_rid"),
            checksum_error: smf("checksum_error"),
            parser_error: smf("parser_error"),
        };
        let mut it = bodies.into_iter();
        let mut next = || it.next().unwrap_or_default();
        let (verify, ingress, egress, compute, deparser) = (next(), next(), next(), next(), next());
        let b = self.prog;
        Ok(Program {
            slot_count: b.slot_count,
            header_types: b.header_types,
            headers: b.headers,
            stacks: b.stacks,
            actions: b.actions,
            tables: b.tables,
            registers: b.registers,
            counters: b.counters,
            states,
            start,
            verify,
            ingress,
            egress,
            compute,
            deparser,
            meta_slots: meta_list.iter().map(|(_, s, l)| (*s, l.clone())).collect(),
            meta_names: meta_list
                .into_iter()
                .map(|(n, s, _)| (n.trim_start_matches("meta.").to_string(), s))
                .collect(),
            sm: std_meta,
            errors: b.errors,
        })
    }

    fn param_types(&self, decl: &P) -> Result<Vec<String>, LoadError> {
        let mut out = vec![];
        for c in body(decl) {
            if c.as_rule() == Rule::params {
                for p in c.into_inner() {
                    let b = body(&p);
                    let t = b.iter().find(|x| x.as_rule() == Rule::type_ref);
                    out.push(t.map(|t| t.as_str().trim().to_string()).unwrap_or_default());
                }
            }
        }
        Ok(out)
    }

    /// Binds a block's parameters to the architecture's instances by type.
    fn bind_params(&mut self, decl: &P, g: &Globals) -> Result<(), LoadError> {
        for c in body(decl) {
            if c.as_rule() != Rule::params {
                continue;
            }
            for p in c.into_inner() {
                let b = body(&p);
                let t = b.iter().find(|x| x.as_rule() == Rule::type_ref);
                let (t, n) = match (t, b.last()) {
                    (Some(t), Some(n)) => (t.as_str().trim().to_string(), n.as_str().to_string()),
                    _ => return Err(type_err(&p, "parameter")),
                };
                let binding = match t.as_str() {
                    "packet_in" => Binding::PacketIn,
                    "packet_out" => Binding::PacketOut,
                    "standard_metadata_t" => Binding::Place(g.sm.clone()),
                    x if x == g.h_name => Binding::Place(g.hdr.clone()),
                    x if x == g.m_name => Binding::Place(g.meta.clone()),
                    _ => {
                        return Err(type_err(
                            &p,
                            format!(
                                "parameter of type {t}: v1model blocks take H, M, standard_metadata_t and packets"
                            ),
                        ));
                    }
                };
                self.bind(&n, binding);
            }
        }
        Ok(())
    }

    fn parser(&mut self, d: &P, g: &Globals) -> Result<(Vec<State>, usize), LoadError> {
        self.scopes.push(HashMap::new());
        self.bind_params(d, g)?;
        let parts = body(d);
        let state_pairs: Vec<P> = parts
            .iter()
            .filter(|p| p.as_rule() == Rule::state)
            .cloned()
            .collect();
        self.states.clear();
        for (i, s) in state_pairs.iter().enumerate() {
            let n = body(s)[0].as_str().to_string();
            if n == "accept" || n == "reject" || self.states.insert(n.clone(), i).is_some() {
                return Err(type_err(s, format!("state {n} defined twice or reserved")));
            }
        }
        let mut init = vec![];
        for p in &parts[1..] {
            match p.as_rule() {
                Rule::const_decl | Rule::var_decl => self.stmt(p, &mut init)?,
                _ => {}
            }
        }
        let mut states = vec![];
        for s in &state_pairs {
            let b = body(s);
            let mut stmts = if states.is_empty() {
                init.clone()
            } else {
                vec![]
            };
            self.scopes.push(HashMap::new());
            for st in &b[1..b.len() - 1] {
                self.stmt(st, &mut stmts)?;
            }
            let trans = self.transition(&b[b.len() - 1])?;
            self.scopes.pop();
            states.push(State {
                name: b[0].as_str().to_string(),
                body: stmts,
                trans,
            });
        }
        self.scopes.pop();
        let start = *self
            .states
            .get("start")
            .ok_or_else(|| type_err(d, "parser has no start state"))?;
        if start != 0 {
            // Locals' initialisers run in the first state; move them to start.
            let init_len = init.len();
            let moved: Vec<Stmt> = states[0].body.drain(..init_len).collect();
            let mut b = moved;
            b.append(&mut states[start].body);
            states[start].body = b;
        }
        Ok((states, start))
    }

    fn control_block(&mut self, d: &P, g: &Globals) -> Result<Vec<Stmt>, LoadError> {
        self.scopes.push(HashMap::new());
        self.bind_params(d, g)?;
        let parts = body(d);
        self.control = parts[0].as_str().to_string();
        let mut init = vec![];
        for p in &parts[1..] {
            match p.as_rule() {
                Rule::action_decl => self.action_decl(p)?,
                Rule::table_decl => self.table_decl(p)?,
                Rule::const_decl | Rule::var_decl => self.stmt(p, &mut init)?,
                Rule::extern_inst => self.extern_inst(p)?,
                Rule::block => {
                    self.stmt(p, &mut init)?;
                }
                _ => {}
            }
        }
        self.scopes.pop();
        Ok(init)
    }

    fn action_decl(&mut self, d: &P) -> Result<(), LoadError> {
        let b = body(d);
        let name = b[0].as_str().to_string();
        self.scopes.push(HashMap::new());
        let mut params = vec![];
        for part in &b[1..b.len() - 1] {
            for p in part.clone().into_inner() {
                let pb = body(&p);
                if pb[0].as_rule() == Rule::direction {
                    return Err(unsupported(
                        &p,
                        "directed action parameters (only directionless ones)",
                    ));
                }
                let ty = match self.type_ref(&pb[0])? {
                    TypeDef::Scalar(t @ (Ty::Bit(_) | Ty::Bool)) => t,
                    _ => return Err(unsupported(&p, "action parameters other than bit<N>/bool")),
                };
                let s = self.prog.slot(ty);
                let pn = pb[1].as_str().to_string();
                self.bind(&pn, Binding::Place(Place::Scalar(s, ty)));
                params.push((pn, s, ty.width()));
            }
        }
        let mut stmts = vec![];
        self.stmt(&b[b.len() - 1], &mut stmts)?;
        self.scopes.pop();
        let id = id_annotation(d)?;
        self.prog.actions.push(Action {
            name: format!("{}.{name}", self.control),
            params,
            body: stmts,
            id,
        });
        let aid = self.prog.actions.len() - 1;
        self.bind(&name, Binding::Action(aid));
        Ok(())
    }

    fn table_decl(&mut self, d: &P) -> Result<(), LoadError> {
        let b = body(d);
        let name = b[0].as_str().to_string();
        let mut t = Table {
            name: format!("{}.{name}", self.control),
            keys: vec![],
            actions: vec![],
            default_action: 0,
            default_args: vec![],
            const_default: false,
            size: 1024,
            id: id_annotation(d)?,
        };
        for p in &b[1..] {
            match p.as_rule() {
                Rule::key_prop => {
                    for k in p.clone().into_inner() {
                        let kb = body(&k);
                        let (e, ty) = self.expr(&kb[0])?;
                        let width = match ty {
                            Ty::Bit(w) => w,
                            Ty::Bool => 1,
                            _ => return Err(type_err(&kb[0], "table keys must be bit<N> or bool")),
                        };
                        let kind = match kb[1].as_str() {
                            "exact" => MatchKind::Exact,
                            "ternary" => MatchKind::Ternary,
                            "lpm" => MatchKind::Lpm,
                            "range" => MatchKind::Range,
                            "optional" => MatchKind::Optional,
                            k => return Err(unsupported(&kb[1], format!("match kind {k}"))),
                        };
                        let name: String = kb[0].as_str().split_whitespace().collect();
                        t.keys.push(Key {
                            name,
                            expr: e,
                            kind,
                            width,
                        });
                    }
                    if t.keys.iter().filter(|k| k.kind == MatchKind::Lpm).count() > 1 {
                        return Err(type_err(p, "more than one lpm key"));
                    }
                }
                Rule::actions_prop => {
                    for a in p.clone().into_inner() {
                        let n = body(&a)[0].clone();
                        match self.lookup(n.as_str()) {
                            Some(Binding::Action(id)) => t.actions.push(*id),
                            _ => {
                                return Err(type_err(&n, format!("unknown action {}", n.as_str())));
                            }
                        }
                    }
                }
                Rule::default_prop => {
                    let db = body(p);
                    let mut i = 0;
                    if db[0].as_rule() == Rule::const_kw {
                        t.const_default = true;
                        i = 1;
                    }
                    let aid = match self.lookup(db[i].as_str()) {
                        Some(Binding::Action(id)) => *id,
                        _ => {
                            return Err(type_err(
                                &db[i],
                                format!("unknown action {}", db[i].as_str()),
                            ));
                        }
                    };
                    let mut args = vec![];
                    if let Some(list) = db.get(i + 1) {
                        let params = self.prog.actions[aid].params.clone();
                        let exprs: Vec<P> = list.clone().into_inner().collect();
                        if exprs.len() != params.len() {
                            return Err(type_err(list, "wrong number of action arguments"));
                        }
                        for (x, (_, s, _)) in exprs.iter().zip(&params) {
                            let (e, et) = self.expr(x)?;
                            let e = self.coerce(e, et, self.prog.slot_ty[*s], x)?;
                            args.push(expr::const_eval(&e).ok_or_else(|| {
                                type_err(x, "default action arguments must be constants")
                            })?);
                        }
                    } else if !self.prog.actions[aid].params.is_empty() {
                        return Err(type_err(p, "default action needs its arguments"));
                    }
                    t.default_action = aid;
                    t.default_args = args;
                }
                Rule::size_prop => {
                    let x = body(p)[0].clone();
                    let (e, _) = self.expr(&x)?;
                    t.size = expr::const_eval(&e)
                        .and_then(|v| usize::try_from(v).ok())
                        .ok_or_else(|| type_err(&x, "size must be a constant"))?;
                }
                Rule::entries_prop => {
                    return Err(unsupported(
                        p,
                        "const entries (install entries from the control file)",
                    ));
                }
                _ => {
                    return Err(unsupported(
                        p,
                        format!(
                            "table property {}",
                            p.as_str().split('=').next().unwrap_or("").trim()
                        ),
                    ));
                }
            }
        }
        if !t.actions.contains(&t.default_action) && t.default_action != 0 {
            return Err(type_err(d, "default action is not in the table's actions"));
        }
        self.prog.tables.push(t);
        let id = self.prog.tables.len() - 1;
        self.bind(&name, Binding::Table(id));
        Ok(())
    }

    fn extern_inst(&mut self, d: &P) -> Result<(), LoadError> {
        let b = body(d);
        let kind = b[0].as_str();
        let name = b[b.len() - 1].as_str().to_string();
        let targs = b.iter().find(|x| x.as_rule() == Rule::type_args);
        let args: Vec<P> = b
            .iter()
            .find(|x| x.as_rule() == Rule::expr_list)
            .map(|l| l.clone().into_inner().collect())
            .unwrap_or_default();
        let id = id_annotation(d)?;
        let qual = format!("{}.{name}", self.control);
        match kind {
            "register" => {
                let w = match targs.map(|t| t.clone().into_inner().collect::<Vec<_>>()) {
                    Some(ts) if ts.len() == 1 => match self.type_ref(&ts[0])? {
                        TypeDef::Scalar(Ty::Bit(w)) => w,
                        _ => return Err(type_err(d, "register<bit<N>> only")),
                    },
                    _ => return Err(type_err(d, "register needs one type argument")),
                };
                if args.len() != 1 {
                    return Err(unsupported(d, "register with an index type argument"));
                }
                let size = self.const_usize(&args[0])?;
                self.prog.registers.push(Register {
                    name: qual,
                    width: w,
                    size,
                    id,
                });
                let rid = self.prog.registers.len() - 1;
                self.bind(&name, Binding::Reg(rid));
            }
            "counter" => {
                if args.len() != 2 {
                    return Err(type_err(d, "counter(size, CounterType.x)"));
                }
                let size = self.const_usize(&args[0])?;
                let kind = match args[1].as_str().trim() {
                    "CounterType.packets" => CounterKind::Packets,
                    "CounterType.bytes" => CounterKind::Bytes,
                    "CounterType.packets_and_bytes" => CounterKind::Both,
                    k => return Err(type_err(&args[1], format!("counter type {k}"))),
                };
                self.prog.counters.push(Counter {
                    name: qual,
                    size,
                    kind,
                    id,
                });
                let cid = self.prog.counters.len() - 1;
                self.bind(&name, Binding::Ctr(cid));
            }
            k => return Err(unsupported(d, format!("extern {k}"))),
        }
        Ok(())
    }

    pub(crate) fn const_usize(&mut self, x: &P) -> Result<usize, LoadError> {
        let (e, _) = self.expr(x)?;
        expr::const_eval(&e)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| type_err(x, "expected a constant"))
    }
}

/// The architecture's instances blocks bind their parameters to.
pub(crate) struct Globals {
    h_name: String,
    m_name: String,
    hdr: Place,
    meta: Place,
    sm: Place,
}
