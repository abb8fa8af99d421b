//! The interpreter: expressions with bit<N> semantics (wrapping arithmetic, saturating
//! `|+|`/`|-|`, slices, concatenation), statements, table application, the v1model externs,
//! and the parser state machine. One `Ctx` is one pass of one packet through one block.

use crate::bits::{get_bits, put_bits};
use crate::error::PacketError;
use crate::externs::{checksum_or_hash, data_bytes};
use crate::ir::*;
use crate::runtime::Runtime;

/// Results inside the interpreter: the error boxed, so the common path moves one word.
pub type R<T> = Result<T, Box<PacketError>>;

/// Most parser state transitions per packet (a state machine looping without consuming
/// input ends with `error.ParserTimeout`).
pub const MAX_PARSER_STEPS: usize = 1024;

/// The values of one packet's slots, header validity bits and stack `next` indices.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub slots: Vec<u128>,
    pub valid: Vec<bool>,
    pub next: Vec<usize>,
}

impl Env {
    pub fn new(p: &Program) -> Env {
        Env {
            slots: vec![0; p.slot_count],
            valid: vec![false; p.headers.len()],
            next: vec![0; p.stacks.len()],
        }
    }

    pub fn reset(&mut self) {
        self.slots.fill(0);
        self.valid.fill(false);
        self.next.fill(0);
    }
}

/// Side effects the architecture acts on after the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// `recirculate_preserving_field_list(n)`.
    pub recirculate: Option<u8>,
    /// `clone`: (E2E?, session, field list).
    pub clone: Option<(bool, u32, Option<u8>)>,
    pub truncate: Option<u32>,
}

/// Control flow out of a statement list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    Next,
    Exit,
    Return,
}

pub struct Ctx<'a> {
    pub p: &'a Program,
    pub rt: &'a mut Runtime,
    pub env: &'a mut Env,
    pub input: &'a [u8],
    /// Parser position in bytes.
    pub cursor: usize,
    pub out: &'a mut Vec<u8>,
    pub fx: Effects,
    pub keybuf: Vec<u128>,
    /// `exit` ran inside a table's action: the control ends.
    pub exited: bool,
}

/// A binary operation on values of width `w` (comparisons and logic return 0/1).
#[inline]
pub fn binop(op: BinOp, a: u128, b: u128, w: u16) -> u128 {
    let m = mask(w);
    match op {
        BinOp::Add => a.wrapping_add(b) & m,
        BinOp::Sub => a.wrapping_sub(b) & m,
        BinOp::Mul => a.wrapping_mul(b) & m,
        BinOp::Div => a.checked_div(b).unwrap_or(0) & m,
        BinOp::Mod => a.checked_rem(b).unwrap_or(0) & m,
        BinOp::SatAdd => a.checked_add(b).map_or(m, |s| s.min(m)),
        BinOp::SatSub => a.saturating_sub(b),
        BinOp::And => a & b,
        BinOp::Or => a | b,
        BinOp::Xor => a ^ b,
        BinOp::Shl => {
            if b >= u128::from(w) {
                0
            } else {
                (a << b) & m
            }
        }
        BinOp::Shr => {
            if b >= u128::from(w) {
                0
            } else {
                a >> b
            }
        }
        BinOp::Eq => u128::from(a == b),
        BinOp::Ne => u128::from(a != b),
        BinOp::Lt => u128::from(a < b),
        BinOp::Le => u128::from(a <= b),
        BinOp::Gt => u128::from(a > b),
        BinOp::Ge => u128::from(a >= b),
        BinOp::LAnd => u128::from(a != 0 && b != 0),
        BinOp::LOr => u128::from(a != 0 || b != 0),
    }
}

impl Ctx<'_> {
    pub fn eval(&mut self, e: &Expr) -> R<u128> {
        Ok(match e {
            Expr::Const(v) => *v,
            Expr::Slot(s) => self.env.slots[*s],
            Expr::Valid(h) => u128::from(self.env.valid[*h]),
            Expr::Not(x) => u128::from(self.eval(x)? == 0),
            Expr::BNot(x, w) => !self.eval(x)? & mask(*w),
            Expr::Neg(x, w) => self.eval(x)?.wrapping_neg() & mask(*w),
            Expr::Bin(BinOp::LAnd, a, b, _) => u128::from(self.eval(a)? != 0 && self.eval(b)? != 0),
            Expr::Bin(BinOp::LOr, a, b, _) => u128::from(self.eval(a)? != 0 || self.eval(b)? != 0),
            Expr::Bin(op, a, b, w) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                binop(*op, a, b, *w)
            }
            Expr::Slice(x, lo, w) => (self.eval(x)? >> lo) & mask(*w),
            Expr::Concat(a, b, bw) => {
                let a = self.eval(a)?;
                let b = self.eval(b)?;
                if *bw >= 128 { b } else { (a << bw) | b }
            }
            Expr::Cast(x, w) => self.eval(x)? & mask(*w),
            Expr::Cond(c, a, b) => {
                if self.eval(c)? != 0 {
                    self.eval(a)?
                } else {
                    self.eval(b)?
                }
            }
            Expr::TableHit(t, want_hit) => {
                let (hit, _) = self.apply(*t)?;
                u128::from(hit == *want_hit)
            }
        })
    }

    #[inline]
    fn assign(&mut self, l: &LVal, v: u128) {
        let s = &mut self.env.slots[l.slot];
        if l.w == l.full {
            *s = v & mask(l.w);
        } else {
            let m = mask(l.w) << l.lo;
            *s = (*s & !m) | ((v << l.lo) & m);
        }
    }

    pub fn exec(&mut self, stmts: &[Stmt]) -> R<Flow> {
        for s in stmts {
            let f = self.stmt(s)?;
            if self.exited {
                return Ok(Flow::Exit);
            }
            if f != Flow::Next {
                return Ok(f);
            }
        }
        Ok(Flow::Next)
    }

    fn stmt(&mut self, s: &Stmt) -> R<Flow> {
        match s {
            Stmt::Assign(l, e) => {
                let v = self.eval(e)?;
                self.assign(l, v);
            }
            Stmt::CopyHeader(dst, src) => {
                let (d, sr) = (&self.p.headers[*dst], &self.p.headers[*src]);
                for (a, b) in d.slots.iter().zip(&sr.slots) {
                    self.env.slots[*a] = self.env.slots[*b];
                }
                self.env.valid[*dst] = self.env.valid[*src];
            }
            Stmt::If(c, t, e) => {
                let f = if self.eval(c)? != 0 {
                    self.exec(t)?
                } else {
                    self.exec(e)?
                };
                if f != Flow::Next {
                    return Ok(f);
                }
            }
            Stmt::Apply(t) => {
                self.apply(*t)?;
            }
            Stmt::Switch(t, arms) => {
                let (_, a) = self.apply(*t)?;
                if self.exited {
                    return Ok(Flow::Exit);
                }
                let arm = arms
                    .iter()
                    .find(|(x, _)| *x == Some(a))
                    .or_else(|| arms.iter().find(|(x, _)| x.is_none()));
                if let Some((_, body)) = arm {
                    let f = self.exec(body)?;
                    if f != Flow::Next {
                        return Ok(f);
                    }
                }
            }
            Stmt::Call(a, args) => {
                let act = &self.p.actions[*a];
                for (e, (_, slot, w)) in args.iter().zip(&act.params) {
                    let v = self.eval(e)? & mask(*w);
                    self.env.slots[*slot] = v;
                }
                if self.exec(&act.body)? == Flow::Exit {
                    return Ok(Flow::Exit);
                }
            }
            Stmt::SetValid(h, v) => self.env.valid[*h] = *v,
            Stmt::Exit => return Ok(Flow::Exit),
            Stmt::Return => return Ok(Flow::Return),
            Stmt::Ext(x, pos) => self.ext(x, *pos)?,
        }
        Ok(Flow::Next)
    }

    /// Applies table `t`: returns (hit, action run). `exit` inside the action sets
    /// `exited`.
    pub fn apply(&mut self, t: TableId) -> R<(bool, ActionId)> {
        let table = &self.p.tables[t];
        let mut key = std::mem::take(&mut self.keybuf);
        key.clear();
        for k in &table.keys {
            let v = self.eval(&k.expr)?;
            key.push(v);
        }
        let (hit, action) = {
            let st = &self.rt.tables[t];
            let (hit, action, args) = match st.lookup(&key, table) {
                Some(e) => (true, e.action, &e.args[..]),
                None => (false, st.default_action, &st.default_args[..]),
            };
            let act = &self.p.actions[action];
            for ((_, slot, _), v) in act.params.iter().zip(args) {
                self.env.slots[*slot] = *v;
            }
            (hit, action)
        };
        self.keybuf = key;
        if self.exec(&self.p.actions[action].body)? == Flow::Exit {
            self.exited = true;
        }
        Ok((hit, action))
    }

    fn index(&mut self, e: &Expr, size: usize, name: &str, pos: Pos) -> R<usize> {
        let i = self.eval(e)?;
        usize::try_from(i)
            .ok()
            .filter(|&i| i < size)
            .ok_or_else(|| {
                Box::new(PacketError::Index {
                    line: pos.line,
                    col: pos.col,
                    name: name.to_string(),
                    index: i,
                    size,
                })
            })
    }

    fn ext(&mut self, x: &Ext, pos: Pos) -> R<()> {
        let p = self.p;
        match x {
            Ext::RegRead { reg, dst, idx } => {
                let r = &p.registers[*reg];
                let i = self.index(idx, r.size, &r.name, pos)?;
                let v = self.rt.registers[*reg][i];
                self.assign(dst, v);
            }
            Ext::RegWrite { reg, idx, val } => {
                let r = &p.registers[*reg];
                let i = self.index(idx, r.size, &r.name, pos)?;
                let v = self.eval(val)? & mask(r.width);
                self.rt.registers[*reg][i] = v;
            }
            Ext::Count { ctr, idx } => {
                let c = &p.counters[*ctr];
                let i = self.index(idx, c.size, &c.name, pos)?;
                let len = self.input.len() as u64;
                let e = &mut self.rt.counters[*ctr][i];
                e.0 += 1;
                e.1 += len;
            }
            Ext::MarkToDrop => {
                self.env.slots[p.sm.egress_spec] = crate::switch::DROP_PORT.into();
                self.env.slots[p.sm.mcast_grp] = 0;
            }
            Ext::Hash {
                dst,
                algo,
                base,
                data,
                max,
            } => {
                let bytes = self.data(data)?;
                let h = checksum_or_hash(*algo, &bytes, &mut self.rt.rng);
                let base = self.eval(base)?;
                let max = self.eval(max)?;
                let v = if max == 0 {
                    base.wrapping_add(h)
                } else {
                    base.wrapping_add(h % max)
                };
                self.assign(dst, v);
            }
            Ext::Random { dst, lo, hi } => {
                let lo = self.eval(lo)?;
                let hi = self.eval(hi)?;
                let v = if hi <= lo {
                    lo
                } else {
                    // A full 128-bit span cannot be written as hi - lo + 1.
                    let span = (hi - lo).saturating_add(1);
                    let d = self.rt.rng.draw(span).ok_or_else(|| {
                        Box::new(PacketError::Runtime {
                            line: pos.line,
                            col: pos.col,
                            msg: "random: the injected draws are used up".into(),
                        })
                    })?;
                    lo + d
                };
                self.assign(dst, v);
            }
            Ext::Recirculate(n) => self.fx.recirculate = Some(*n),
            Ext::Clone {
                e2e,
                session,
                field_list,
            } => {
                let s = self.eval(session)? as u32;
                self.fx.clone = Some((*e2e, s, *field_list));
            }
            Ext::Truncate(n) => {
                let n = self.eval(n)?;
                self.fx.truncate = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            Ext::UpdateChecksum {
                cond,
                data,
                dst,
                algo,
            } => {
                if self.eval(cond)? != 0 {
                    let bytes = self.data(data)?;
                    let v = checksum_or_hash(*algo, &bytes, &mut self.rt.rng);
                    self.assign(dst, v);
                }
            }
            Ext::VerifyChecksum {
                cond,
                data,
                sum,
                sum_w,
                algo,
            } => {
                if self.eval(cond)? != 0 {
                    let bytes = self.data(data)?;
                    let v = checksum_or_hash(*algo, &bytes, &mut self.rt.rng) & mask(*sum_w);
                    if v != self.eval(sum)? {
                        self.env.slots[p.sm.checksum_error] = 1;
                    }
                }
            }
            Ext::Emit(hs) => {
                for &h in hs {
                    if self.env.valid[h] {
                        self.emit(h);
                    }
                }
            }
            Ext::Extract(h) => self.extract(*h)?,
            Ext::ExtractNext(s) => {
                let i = self.env.next[*s];
                let Some(&h) = p.stacks[*s].elems.get(i) else {
                    return Err(self.parser_error("StackOutOfBounds"));
                };
                self.extract(h)?;
                self.env.next[*s] = i + 1;
            }
            Ext::Advance(bits) => {
                let b = self.eval(bits)?;
                if b % 8 != 0 {
                    return Err(Box::new(PacketError::Runtime {
                        line: pos.line,
                        col: pos.col,
                        msg: format!("advance by {b} bits (only whole bytes)"),
                    }));
                }
                let n = usize::try_from(b / 8).unwrap_or(usize::MAX);
                if self.input.len() - self.cursor < n {
                    return Err(self.parser_error("PacketTooShort"));
                }
                self.cursor += n;
            }
        }
        Ok(())
    }

    fn data(&mut self, data: &[(Expr, u16)]) -> R<Vec<u8>> {
        let mut vals = Vec::with_capacity(data.len());
        for (e, w) in data {
            vals.push((self.eval(e)?, *w));
        }
        Ok(data_bytes(&vals))
    }

    fn emit(&mut self, h: HdrId) {
        let hd = &self.p.headers[h];
        let ht = &self.p.header_types[hd.ty];
        let start = self.out.len();
        self.out.resize(start + (ht.bits / 8) as usize, 0);
        let mut off = start * 8;
        for (slot, (_, w)) in hd.slots.iter().zip(&ht.fields) {
            put_bits(self.out, off, *w, self.env.slots[*slot]);
            off += usize::from(*w);
        }
    }

    /// A parser error marker: the parser loop turns it into `parser_error` and stops.
    fn parser_error(&self, name: &str) -> Box<PacketError> {
        Box::new(PacketError::Runtime {
            line: 0,
            col: 0,
            msg: format!("parser_error:{name}"),
        })
    }

    fn extract(&mut self, h: HdrId) -> R<()> {
        let hd = &self.p.headers[h];
        let ht = &self.p.header_types[hd.ty];
        let n = (ht.bits / 8) as usize;
        if self.input.len() - self.cursor < n {
            return Err(self.parser_error("PacketTooShort"));
        }
        let mut off = self.cursor * 8;
        for (slot, (_, w)) in hd.slots.iter().zip(&ht.fields) {
            self.env.slots[*slot] = get_bits(self.input, off, *w);
            off += usize::from(*w);
        }
        self.env.valid[h] = true;
        self.cursor += n;
        Ok(())
    }

    /// Runs the parser; a parser error sets `standard_metadata.parser_error` (the packet
    /// goes on to ingress, as in BMv2).
    pub fn parse(&mut self) -> R<()> {
        let p = self.p;
        let mut state = p.start;
        for _ in 0..MAX_PARSER_STEPS {
            let st = &p.states[state];
            match self.exec(&st.body) {
                Ok(_) => {}
                Err(e) => match *e {
                    PacketError::Runtime {
                        line: 0, ref msg, ..
                    } if msg.starts_with("parser_error:") => {
                        let code = p.error_code(&msg["parser_error:".len()..]).unwrap_or(1);
                        self.env.slots[p.sm.parser_error] = code;
                        return Ok(());
                    }
                    _ => return Err(e),
                },
            }
            let target = match &st.trans {
                Trans::Accept => Target::Accept,
                Trans::Reject => Target::Reject,
                Trans::State(s) => Target::State(*s),
                Trans::Select(keys, cases) => {
                    let mut vals = [0u128; 8];
                    let mut vv = Vec::new();
                    for (i, k) in keys.iter().enumerate() {
                        let v = self.eval(k)?;
                        if i < 8 {
                            vals[i] = v;
                        } else {
                            vv.push(v);
                        }
                    }
                    let get = |i: usize| if i < 8 { vals[i] } else { vv[i - 8] };
                    let hit = cases.iter().find(|(ks, _)| {
                        ks.iter().enumerate().all(|(i, k)| match *k {
                            KeyElem::Any => true,
                            KeyElem::Value(v) => get(i) == v,
                            KeyElem::Mask(v, m) => get(i) & m == v,
                            KeyElem::Range(lo, hi) => (lo..=hi).contains(&get(i)),
                        })
                    });
                    match hit {
                        Some((_, t)) => *t,
                        None => {
                            self.env.slots[p.sm.parser_error] =
                                p.error_code("NoMatch").unwrap_or(2);
                            return Ok(());
                        }
                    }
                }
            };
            match target {
                Target::Accept | Target::Reject => return Ok(()),
                Target::State(s) => state = s,
            }
        }
        self.env.slots[p.sm.parser_error] = p.error_code("ParserTimeout").unwrap_or(5);
        Ok(())
    }
}
