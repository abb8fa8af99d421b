//! Lowering of expressions (with width checking and P4's precedence) and statements
//! (assignments, conditionals, table application, action calls and the v1model externs).

use super::{Binding, Lowerer, P, Place, Rule, body, pos, type_err, unsupported};
use crate::error::LoadError;
use crate::ir::*;
use std::collections::HashMap;

/// Parses an integer literal (`42`, `0x2a`, `0b101`, `8w42`, `16w0x800`): value and width.
pub(crate) fn int_text(s: &str, p: &P) -> Result<(u128, Option<u16>), LoadError> {
    let s: String = s.chars().filter(|&c| c != '_').collect();
    let (width, digits) = match s.find(['w', 's']) {
        Some(i) if !s.starts_with("0x") && !s.starts_with("0X") || i < 2 => {
            if s.as_bytes()[i] == b's' {
                return Err(unsupported(p, "signed literals (int<N>)"));
            }
            let w: u16 = s[..i]
                .parse()
                .ok()
                .filter(|w| (1..=128).contains(w))
                .ok_or_else(|| unsupported(p, format!("literal width in {s} (1..=128)")))?;
            (Some(w), &s[i + 1..])
        }
        _ => (None, s.as_str()),
    };
    let (radix, d) = match digits.get(..2) {
        Some("0x" | "0X") => (16, &digits[2..]),
        Some("0b" | "0B") => (2, &digits[2..]),
        Some("0o" | "0O") => (8, &digits[2..]),
        _ => (10, digits),
    };
    let v = u128::from_str_radix(d, radix)
        .map_err(|_| type_err(p, format!("integer {s} does not fit in 128 bits")))?;
    if let Some(w) = width
        && v > mask(w)
    {
        return Err(type_err(p, format!("{s} does not fit in bit<{w}>")));
    }
    Ok((v, width))
}

/// The value of a constant expression.
pub(crate) fn const_eval(e: &Expr) -> Option<u128> {
    Some(match e {
        Expr::Const(v) => *v,
        Expr::Cast(x, w) => const_eval(x)? & mask(*w),
        Expr::BNot(x, w) => !const_eval(x)? & mask(*w),
        Expr::Neg(x, w) => const_eval(x)?.wrapping_neg() & mask(*w),
        Expr::Not(x) => u128::from(const_eval(x)? == 0),
        Expr::Slice(x, lo, w) => (const_eval(x)? >> lo) & mask(*w),
        Expr::Concat(a, b, bw) => (const_eval(a)? << bw) | const_eval(b)?,
        Expr::Bin(op, a, b, w) => crate::exec::binop(*op, const_eval(a)?, const_eval(b)?, *w),
        Expr::Cond(c, a, b) => {
            if const_eval(c)? != 0 {
                const_eval(a)?
            } else {
                const_eval(b)?
            }
        }
        _ => return None,
    })
}

/// Binding strength of an infix operator (p4c's table; higher binds tighter).
fn prec(r: Rule) -> (u8, BinOp) {
    match r {
        Rule::lor => (1, BinOp::LOr),
        Rule::land => (2, BinOp::LAnd),
        Rule::bor => (3, BinOp::Or),
        Rule::bxor => (4, BinOp::Xor),
        Rule::band => (5, BinOp::And),
        Rule::eq => (6, BinOp::Eq),
        Rule::ne => (6, BinOp::Ne),
        Rule::lt => (7, BinOp::Lt),
        Rule::gt => (7, BinOp::Gt),
        Rule::le => (7, BinOp::Le),
        Rule::ge => (7, BinOp::Ge),
        Rule::shl => (8, BinOp::Shl),
        Rule::shr => (8, BinOp::Shr),
        Rule::add => (9, BinOp::Add),
        Rule::sub => (9, BinOp::Sub),
        Rule::sat_add => (9, BinOp::SatAdd),
        Rule::sat_sub => (9, BinOp::SatSub),
        // `++` shares `+`'s level; BinOp is a placeholder, concat is built separately.
        Rule::concat => (9, BinOp::Or),
        Rule::div => (10, BinOp::Div),
        Rule::modulo => (10, BinOp::Mod),
        _ => (10, BinOp::Mul),
    }
}

/// What a path (`a.b[2].c`) names.
pub(crate) enum Res {
    Place(Place),
    Value(Expr, Ty),
    Binding(Binding),
    StackNext(StackId),
}

impl<'a> Lowerer<'a> {
    pub(crate) fn coerce(&self, e: Expr, from: Ty, to: Ty, p: &P) -> Result<Expr, LoadError> {
        match (from, to) {
            (a, b) if a == b => Ok(e),
            (Ty::Int, Ty::Bit(w)) => match const_eval(&e) {
                Some(v) => Ok(Expr::Const(v & mask(w))),
                None => Err(type_err(p, "not a constant")),
            },
            _ => Err(type_err(
                p,
                format!(
                    "type mismatch: {} where {} is expected",
                    self.ty_name(from),
                    self.ty_name(to)
                ),
            )),
        }
    }

    fn ty_name(&self, t: Ty) -> String {
        match t {
            Ty::Bit(w) => format!("bit<{w}>"),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Error => "error".into(),
            Ty::Enum(i) => self.enums.get(i).map(|e| e.0.clone()).unwrap_or_default(),
        }
    }

    pub(crate) fn expr(&mut self, p: &P) -> Result<(Expr, Ty), LoadError> {
        match p.as_rule() {
            Rule::expr => {
                let parts: Vec<P> = p.clone().into_inner().collect();
                let (c, ct) = self.expr(&parts[0])?;
                if parts.len() == 1 {
                    return Ok((c, ct));
                }
                let c = self.coerce(c, ct, Ty::Bool, &parts[0])?;
                let (a, at) = self.expr(&parts[1])?;
                let (b, bt) = self.expr(&parts[2])?;
                let (a, b, t) = self.unify(a, at, b, bt, p)?;
                Ok((Expr::Cond(Box::new(c), Box::new(a), Box::new(b)), t))
            }
            Rule::binexpr => {
                let parts: Vec<P> = p.clone().into_inner().collect();
                let mut i = 0;
                self.climb(&parts, &mut i, 0)
            }
            Rule::unary => self.unary(p),
            _ => Err(type_err(
                p,
                format!("expression expected ({:?})", p.as_rule()),
            )),
        }
    }

    /// Precedence climbing over `unary (op unary)*`.
    fn climb(&mut self, parts: &[P], i: &mut usize, min: u8) -> Result<(Expr, Ty), LoadError> {
        if parts.len() > 2 * super::MAX_OPERANDS {
            return Err(unsupported(
                &parts[0],
                format!(
                    "more than {} operands in one expression",
                    super::MAX_OPERANDS
                ),
            ));
        }
        let (mut lhs, mut lt) = self.expr(&parts[*i])?;
        *i += 1;
        while *i < parts.len() {
            let op = &parts[*i];
            let (pr, bop) = prec(op.as_rule());
            if pr < min {
                break;
            }
            *i += 1;
            let (rhs, rt) = self.climb(parts, i, pr + 1)?;
            (lhs, lt) = self.binary(op, bop, lhs, lt, rhs, rt)?;
        }
        Ok((lhs, lt))
    }

    fn unify(
        &self,
        a: Expr,
        at: Ty,
        b: Expr,
        bt: Ty,
        p: &P,
    ) -> Result<(Expr, Expr, Ty), LoadError> {
        match (at, bt) {
            (x, y) if x == y => Ok((a, b, x)),
            (Ty::Int, t @ Ty::Bit(_)) => Ok((self.coerce(a, at, t, p)?, b, t)),
            (t @ Ty::Bit(_), Ty::Int) => Ok((a, self.coerce(b, bt, t, p)?, t)),
            _ => Err(type_err(
                p,
                format!(
                    "operands of different types: {} and {}",
                    self.ty_name(at),
                    self.ty_name(bt)
                ),
            )),
        }
    }

    fn binary(
        &self,
        op: &P,
        bop: BinOp,
        a: Expr,
        at: Ty,
        b: Expr,
        bt: Ty,
    ) -> Result<(Expr, Ty), LoadError> {
        use BinOp::*;
        let bx = Box::new;
        if op.as_rule() == Rule::concat {
            return match (at, bt) {
                (Ty::Bit(x), Ty::Bit(y)) if x + y <= 128 => {
                    Ok((Expr::Concat(bx(a), bx(b), y), Ty::Bit(x + y)))
                }
                (Ty::Bit(_), Ty::Bit(_)) => Err(unsupported(op, "values wider than 128 bits")),
                _ => Err(type_err(op, "++ needs two bit<N> operands")),
            };
        }
        match bop {
            LAnd | LOr => {
                let a = self.coerce(a, at, Ty::Bool, op)?;
                let b = self.coerce(b, bt, Ty::Bool, op)?;
                Ok((Expr::Bin(bop, bx(a), bx(b), 1), Ty::Bool))
            }
            Shl | Shr => {
                if !matches!(bt, Ty::Bit(_) | Ty::Int) {
                    return Err(type_err(op, "shift amount must be a number"));
                }
                match at {
                    Ty::Bit(w) => Ok((Expr::Bin(bop, bx(a), bx(b), w), at)),
                    Ty::Int => Ok((
                        Expr::Const(const_eval(&Expr::Bin(bop, bx(a), bx(b), 128)).unwrap_or(0)),
                        Ty::Int,
                    )),
                    _ => Err(type_err(op, "shift of a non-number")),
                }
            }
            Eq | Ne | Lt | Le | Gt | Ge => {
                let (a, b, t) = self.unify(a, at, b, bt, op)?;
                if !matches!(bop, Eq | Ne) && !matches!(t, Ty::Bit(_) | Ty::Int) {
                    return Err(type_err(op, "ordering comparison of non-numbers"));
                }
                Ok((Expr::Bin(bop, bx(a), bx(b), 1), Ty::Bool))
            }
            _ => {
                let (a, b, t) = self.unify(a, at, b, bt, op)?;
                match t {
                    Ty::Bit(w) => Ok((Expr::Bin(bop, bx(a), bx(b), w), t)),
                    Ty::Int => {
                        let v = const_eval(&Expr::Bin(bop, bx(a), bx(b), 128))
                            .ok_or_else(|| type_err(op, "not a constant"))?;
                        Ok((Expr::Const(v), Ty::Int))
                    }
                    _ => Err(type_err(op, format!("arithmetic on {}", self.ty_name(t)))),
                }
            }
        }
    }

    fn unary(&mut self, p: &P) -> Result<(Expr, Ty), LoadError> {
        let parts: Vec<P> = p.clone().into_inner().collect();
        let last = &parts[parts.len() - 1];
        let (mut e, mut t) = match last.as_rule() {
            Rule::cast => {
                let cb: Vec<P> = last.clone().into_inner().collect();
                let to = match cb[0].as_rule() {
                    Rule::bit_type => {
                        let (w, _) = int_text(cb[0].clone().into_inner().as_str(), &cb[0])?;
                        if !(1..=128).contains(&w) {
                            return Err(unsupported(&cb[0], "widths above 128"));
                        }
                        Ty::Bit(w as u16)
                    }
                    Rule::bool_type => Ty::Bool,
                    _ => return Err(unsupported(&cb[0], format!("cast to {}", cb[0].as_str()))),
                };
                let (x, xt) = self.unary(&cb[1])?;
                let e = match (xt, to) {
                    (Ty::Bit(_) | Ty::Bool, Ty::Bit(w)) => Expr::Cast(Box::new(x), w),
                    (Ty::Int, Ty::Bit(w)) => Expr::Const(const_eval(&x).unwrap_or(0) & mask(w)),
                    (Ty::Bit(1) | Ty::Bool, Ty::Bool) => x,
                    _ => {
                        return Err(type_err(
                            last,
                            format!("cannot cast {} to {}", self.ty_name(xt), self.ty_name(to)),
                        ));
                    }
                };
                (e, to)
            }
            _ => self.postfix_value(last)?,
        };
        for op in parts[..parts.len() - 1].iter().rev() {
            (e, t) = match (op.as_str(), t) {
                ("!", Ty::Bool) => (Expr::Not(Box::new(e)), t),
                ("~", Ty::Bit(w)) => (Expr::BNot(Box::new(e), w), t),
                ("-", Ty::Bit(w)) => (Expr::Neg(Box::new(e), w), t),
                ("-", Ty::Int) => (Expr::Const(const_eval(&e).unwrap_or(0).wrapping_neg()), t),
                (o, _) => return Err(type_err(op, format!("{o} applied to {}", self.ty_name(t)))),
            };
        }
        Ok((e, t))
    }

    /// Resolves `atom postfix*` up to (not including) index `end` of the postfix list.
    pub(crate) fn walk(&mut self, atom: &P, posts: &[P]) -> Result<Res, LoadError> {
        let mut r = match atom.as_rule() {
            Rule::ident => match self.lookup(atom.as_str()) {
                Some(Binding::Place(p)) => Res::Place(p.clone()),
                Some(Binding::Const(v, t)) => Res::Value(Expr::Const(*v), *t),
                Some(b) => Res::Binding(b.clone()),
                None => return Err(type_err(atom, format!("unknown name {}", atom.as_str()))),
            },
            Rule::int_lit => {
                let (v, w) = int_text(atom.as_str(), atom)?;
                Res::Value(Expr::Const(v), w.map_or(Ty::Int, Ty::Bit))
            }
            Rule::bool_lit => {
                Res::Value(Expr::Const(u128::from(atom.as_str() == "true")), Ty::Bool)
            }
            Rule::paren => {
                let (e, t) = self.expr(
                    &atom
                        .clone()
                        .into_inner()
                        .next()
                        .ok_or_else(|| type_err(atom, "()"))?,
                )?;
                Res::Value(e, t)
            }
            Rule::error_ref => {
                let n = atom.clone().into_inner().as_str().to_string();
                let v = self
                    .prog
                    .errors
                    .iter()
                    .position(|e| *e == n)
                    .ok_or_else(|| type_err(atom, format!("unknown error.{n}")))?;
                Res::Value(Expr::Const(v as u128), Ty::Error)
            }
            Rule::list_expr => {
                return Err(unsupported(
                    atom,
                    "list expressions outside hash/checksum arguments",
                ));
            }
            _ => return Err(type_err(atom, "expression")),
        };
        for pf in posts {
            r = match (pf.as_rule(), r) {
                (Rule::member, Res::Place(Place::Struct(m))) => {
                    let n = pf.clone().into_inner().as_str();
                    let p = m
                        .into_iter()
                        .find(|(f, _)| f == n)
                        .map(|(_, p)| p)
                        .ok_or_else(|| type_err(pf, format!("no field {n}")))?;
                    Res::Place(p)
                }
                (Rule::member, Res::Place(Place::Header(h))) => {
                    let n = pf.clone().into_inner().as_str();
                    let ht = &self.prog.header_types[self.prog.headers[h].ty];
                    let i = ht.fields.iter().position(|(f, _)| f == n).ok_or_else(|| {
                        type_err(pf, format!("header {} has no field {n}", ht.name))
                    })?;
                    Res::Place(Place::Scalar(
                        self.prog.headers[h].slots[i],
                        Ty::Bit(ht.fields[i].1),
                    ))
                }
                (Rule::member, Res::Place(Place::Stack(s))) => {
                    match pf.clone().into_inner().as_str() {
                        "next" => Res::StackNext(s),
                        "size" => Res::Value(
                            Expr::Const(self.prog.stacks[s].elems.len() as u128),
                            Ty::Int,
                        ),
                        n => return Err(unsupported(pf, format!("stack member {n}"))),
                    }
                }
                (Rule::member, Res::Binding(Binding::EnumType(id))) => {
                    let n = pf.clone().into_inner().as_str();
                    let v = self.enums[id]
                        .1
                        .iter()
                        .position(|m| m == n)
                        .ok_or_else(|| {
                            type_err(pf, format!("{} has no member {n}", self.enums[id].0))
                        })?;
                    Res::Value(Expr::Const(v as u128), Ty::Enum(id))
                }
                (Rule::index, Res::Place(Place::Stack(s))) => {
                    let x = pf
                        .clone()
                        .into_inner()
                        .next()
                        .ok_or_else(|| type_err(pf, "index"))?;
                    let (e, _) = self.expr(&x)?;
                    let i = const_eval(&e)
                        .ok_or_else(|| unsupported(&x, "non-constant stack index"))?;
                    let elems = &self.prog.stacks[s].elems;
                    let h = usize::try_from(i)
                        .ok()
                        .and_then(|i| elems.get(i))
                        .ok_or_else(|| {
                            type_err(&x, format!("index {i} out of the stack's {}", elems.len()))
                        })?;
                    Res::Place(Place::Header(*h))
                }
                (Rule::slice, r) => {
                    let (e, t) = self.res_value(r, pf)?;
                    let w = match t {
                        Ty::Bit(w) => w,
                        _ => return Err(type_err(pf, "slice of a non-bit value")),
                    };
                    let (hi, lo) = self.slice_bounds(pf)?;
                    if hi >= w || lo > hi {
                        return Err(type_err(pf, format!("slice [{hi}:{lo}] of bit<{w}>")));
                    }
                    Res::Value(
                        Expr::Slice(Box::new(e), lo, hi - lo + 1),
                        Ty::Bit(hi - lo + 1),
                    )
                }
                (Rule::call_args, _) => return Err(unsupported(pf, "this call in an expression")),
                (_, _) => return Err(type_err(pf, format!("cannot apply {}", pf.as_str()))),
            };
        }
        Ok(r)
    }

    fn slice_bounds(&mut self, pf: &P) -> Result<(u16, u16), LoadError> {
        let b: Vec<P> = pf.clone().into_inner().collect();
        let mut get = |x: &P| -> Result<u16, LoadError> {
            let (e, _) = self.expr(x)?;
            const_eval(&e)
                .and_then(|v| u16::try_from(v).ok())
                .ok_or_else(|| type_err(x, "slice bounds must be constants"))
        };
        Ok((get(&b[0])?, get(&b[1])?))
    }

    fn res_value(&self, r: Res, p: &P) -> Result<(Expr, Ty), LoadError> {
        match r {
            Res::Value(e, t) => Ok((e, t)),
            Res::Place(Place::Scalar(s, t)) => Ok((Expr::Slot(s), t)),
            Res::Place(_) => Err(type_err(p, "a header or struct is not a value here")),
            _ => Err(type_err(p, "not a value")),
        }
    }

    /// A postfix expression used as a value: a path, or the calls that yield values
    /// (`h.isValid()`, `t.apply().hit` / `.miss`).
    fn postfix_value(&mut self, p: &P) -> Result<(Expr, Ty), LoadError> {
        let parts: Vec<P> = p.clone().into_inner().collect();
        let atom = &parts[0];
        let posts = &parts[1..];
        if let Some(ci) = posts.iter().position(|x| x.as_rule() == Rule::call_args) {
            let method = if ci > 0 {
                posts[ci - 1].clone().into_inner().as_str().to_string()
            } else {
                String::new()
            };
            let target = if ci > 0 {
                self.walk(atom, &posts[..ci - 1])?
            } else {
                return Err(unsupported(p, "function calls in expressions"));
            };
            let rest = &posts[ci + 1..];
            return match (target, method.as_str(), rest.len()) {
                (Res::Place(Place::Header(h)), "isValid", 0) => Ok((Expr::Valid(h), Ty::Bool)),
                (Res::Binding(Binding::Table(t)), "apply", 1) => {
                    match rest[0].clone().into_inner().as_str() {
                        "hit" => Ok((Expr::TableHit(t, true), Ty::Bool)),
                        "miss" => Ok((Expr::TableHit(t, false), Ty::Bool)),
                        m => Err(unsupported(
                            &rest[0],
                            format!("apply().{m} here (use switch for action_run)"),
                        )),
                    }
                }
                _ => Err(unsupported(p, format!("{} in an expression", p.as_str()))),
            };
        }
        let r = self.walk(atom, posts)?;
        self.res_value(r, p)
    }

    /// An assignment target.
    fn lvalue(&mut self, p: &P) -> Result<Result<LVal, HdrId>, LoadError> {
        let parts: Vec<P> = p.clone().into_inner().collect();
        let (posts, slice) = match parts.last() {
            Some(l) if l.as_rule() == Rule::slice && parts.len() > 1 => {
                (&parts[1..parts.len() - 1], Some(l.clone()))
            }
            _ => (&parts[1..], None),
        };
        match (self.walk(&parts[0], posts)?, slice) {
            (Res::Place(Place::Scalar(s, t)), None) => Ok(Ok(LVal {
                slot: s,
                lo: 0,
                w: t.width(),
                full: t.width(),
            })),
            (Res::Place(Place::Scalar(s, Ty::Bit(w))), Some(sl)) => {
                let (hi, lo) = self.slice_bounds(&sl)?;
                if hi >= w || lo > hi {
                    return Err(type_err(&sl, format!("slice [{hi}:{lo}] of bit<{w}>")));
                }
                Ok(Ok(LVal {
                    slot: s,
                    lo,
                    w: hi - lo + 1,
                    full: w,
                }))
            }
            (Res::Place(Place::Header(h)), None) => Ok(Err(h)),
            _ => Err(type_err(p, "not assignable")),
        }
    }

    fn scalar_lvalue(&mut self, p: &P) -> Result<(LVal, Ty), LoadError> {
        match self.lvalue(p)? {
            Ok(l) => {
                let t = if l.w == l.full {
                    self.prog.slot_ty[l.slot]
                } else {
                    Ty::Bit(l.w)
                };
                Ok((l, t))
            }
            Err(_) => Err(type_err(p, "expected a scalar (bit<N>) destination")),
        }
    }

    pub(crate) fn stmt(&mut self, p: &P, out: &mut Vec<Stmt>) -> Result<(), LoadError> {
        if self.depth >= super::MAX_STMT_DEPTH {
            return Err(unsupported(
                p,
                format!("statements nested deeper than {}", super::MAX_STMT_DEPTH),
            ));
        }
        self.depth += 1;
        let r = self.stmt_inner(p, out);
        self.depth -= 1;
        r
    }

    fn stmt_inner(&mut self, p: &P, out: &mut Vec<Stmt>) -> Result<(), LoadError> {
        match p.as_rule() {
            Rule::block => {
                self.scopes.push(HashMap::new());
                for s in p.clone().into_inner() {
                    self.stmt(&s, out)?;
                }
                self.scopes.pop();
            }
            Rule::if_stmt => {
                let b: Vec<P> = p.clone().into_inner().collect();
                let (c, ct) = self.expr(&b[0])?;
                let c = self.coerce(c, ct, Ty::Bool, &b[0])?;
                let mut then = vec![];
                self.scoped(&b[1], &mut then)?;
                let mut els = vec![];
                if let Some(e) = b.get(2) {
                    self.scoped(e, &mut els)?;
                }
                out.push(Stmt::If(c, then, els));
            }
            Rule::switch_stmt => self.switch(p, out)?,
            Rule::exit_stmt => out.push(Stmt::Exit),
            Rule::return_stmt => out.push(Stmt::Return),
            Rule::empty_stmt => {}
            Rule::const_decl => {
                let (n, b) = self.const_decl(p)?;
                self.bind(&n, b);
            }
            Rule::var_decl => {
                let b = body(p);
                let ty = match self.type_ref(&b[0])? {
                    super::TypeDef::Scalar(t) => t,
                    _ => return Err(unsupported(p, "local variables of header or struct type")),
                };
                let s = self.prog.slot(ty);
                let init = match b.get(2) {
                    Some(x) => {
                        let (e, et) = self.expr(x)?;
                        self.coerce(e, et, ty, x)?
                    }
                    None => Expr::Const(0),
                };
                out.push(Stmt::Assign(
                    LVal {
                        slot: s,
                        lo: 0,
                        w: ty.width(),
                        full: ty.width(),
                    },
                    init,
                ));
                self.bind(b[1].as_str(), Binding::Place(Place::Scalar(s, ty)));
            }
            Rule::assign_stmt => {
                let b: Vec<P> = p.clone().into_inner().collect();
                match self.lvalue(&b[0])? {
                    Ok(l) => {
                        let t = if l.w == l.full {
                            self.prog.slot_ty[l.slot]
                        } else {
                            Ty::Bit(l.w)
                        };
                        let (e, et) = self.expr(&b[1])?;
                        let e = self.coerce(e, et, t, &b[1])?;
                        out.push(Stmt::Assign(l, e));
                    }
                    Err(h) => {
                        let x = b[1].clone();
                        let src = self.header_arg(&x)?;
                        if self.prog.headers[src].ty != self.prog.headers[h].ty {
                            return Err(type_err(&x, "header types differ"));
                        }
                        out.push(Stmt::CopyHeader(h, src));
                    }
                }
            }
            Rule::call_stmt => {
                let x = p
                    .clone()
                    .into_inner()
                    .next()
                    .ok_or_else(|| type_err(p, "call"))?;
                self.call(&x, out)?;
            }
            r => return Err(unsupported(p, format!("statement {r:?}"))),
        }
        Ok(())
    }

    fn scoped(&mut self, p: &P, out: &mut Vec<Stmt>) -> Result<(), LoadError> {
        self.scopes.push(HashMap::new());
        let r = self.stmt(p, out);
        self.scopes.pop();
        r
    }

    fn switch(&mut self, p: &P, out: &mut Vec<Stmt>) -> Result<(), LoadError> {
        let b: Vec<P> = p.clone().into_inner().collect();
        let e = b[0].as_str().split_whitespace().collect::<String>();
        let tname = e
            .strip_suffix(".apply().action_run")
            .ok_or_else(|| unsupported(&b[0], "switch on anything but t.apply().action_run"))?;
        let t = match self.lookup(tname) {
            Some(Binding::Table(t)) => *t,
            _ => return Err(type_err(&b[0], format!("unknown table {tname}"))),
        };
        let mut arms = vec![];
        let mut pending = vec![];
        for c in &b[1..] {
            let cb: Vec<P> = c.clone().into_inner().collect();
            let label = cb[0].as_str();
            let a = if label == "default" {
                None
            } else {
                match self.lookup(label) {
                    Some(Binding::Action(a)) if self.prog.tables[t].actions.contains(a) => Some(*a),
                    _ => {
                        return Err(type_err(
                            &cb[0],
                            format!("{label} is not an action of the table"),
                        ));
                    }
                }
            };
            pending.push(a);
            if let Some(blk) = cb.get(1) {
                let mut body = vec![];
                self.stmt(blk, &mut body)?;
                for a in pending.drain(..) {
                    arms.push((a, body.clone()));
                }
            }
        }
        for a in pending {
            arms.push((a, vec![]));
        }
        out.push(Stmt::Switch(t, arms));
        Ok(())
    }

    fn header_arg(&mut self, x: &P) -> Result<HdrId, LoadError> {
        let pe = find_postfix(x).ok_or_else(|| type_err(x, "expected a header"))?;
        let parts: Vec<P> = pe.into_inner().collect();
        match self.walk(&parts[0], &parts[1..])? {
            Res::Place(Place::Header(h)) => Ok(h),
            _ => Err(type_err(x, "expected a header")),
        }
    }

    fn value_arg(&mut self, x: &P, to: Option<Ty>) -> Result<(Expr, Ty), LoadError> {
        let (e, t) = self.expr(x)?;
        match to {
            Some(to) => Ok((self.coerce(e, t, to, x)?, to)),
            None => Ok((e, t)),
        }
    }

    /// `{a, b, c}` as a list of (value, width).
    fn data_list(&mut self, x: &P) -> Result<Vec<(Expr, u16)>, LoadError> {
        let l = find_rule(x, Rule::list_expr)
            .ok_or_else(|| type_err(x, "expected a list {a, b, ...}"))?;
        let mut out = vec![];
        for e in l.into_inner().flat_map(|l| l.into_inner()) {
            let (v, t) = self.expr(&e)?;
            match t {
                Ty::Bit(w) => out.push((v, w)),
                Ty::Bool => out.push((v, 1)),
                _ => return Err(type_err(&e, "list elements must be bit<N> (sized)")),
            }
        }
        Ok(out)
    }

    fn algo(&mut self, x: &P) -> Result<Algo, LoadError> {
        Ok(
            match x.as_str().split_whitespace().collect::<String>().as_str() {
                "HashAlgorithm.crc32" => Algo::Crc32,
                "HashAlgorithm.crc16" => Algo::Crc16,
                "HashAlgorithm.identity" => Algo::Identity,
                "HashAlgorithm.csum16" => Algo::Csum16,
                "HashAlgorithm.xor16" => Algo::Xor16,
                "HashAlgorithm.random" => Algo::Random,
                a => return Err(unsupported(x, format!("hash algorithm {a}"))),
            },
        )
    }

    fn const_u8(&mut self, x: &P) -> Result<u8, LoadError> {
        let (e, _) = self.expr(x)?;
        const_eval(&e)
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| type_err(x, "expected a constant 0..=255"))
    }

    /// A call statement.
    fn call(&mut self, p: &P, out: &mut Vec<Stmt>) -> Result<(), LoadError> {
        let parts: Vec<P> = p.clone().into_inner().collect();
        let at = pos(p);
        let Some(last) = parts.last().filter(|l| l.as_rule() == Rule::call_args) else {
            return Err(type_err(p, "expected a call"));
        };
        let args = call_args(last);
        let argc = args.len();
        let want = |n: usize| -> Result<(), LoadError> {
            if argc == n {
                Ok(())
            } else {
                Err(type_err(p, format!("expected {n} arguments, got {argc}")))
            }
        };
        if parts.len() == 2 {
            // A function or a direct action call.
            let f = parts[0].as_str();
            let ext = match f {
                "mark_to_drop" => Ext::MarkToDrop,
                "hash" => {
                    want(5)?;
                    let (dst, dt) = self.scalar_lvalue(
                        &find_postfix(&args[0]).ok_or_else(|| type_err(&args[0], "destination"))?,
                    )?;
                    let w = dt.width();
                    let algo = self.algo(&args[1])?;
                    let (base, _) = self
                        .value_arg(&args[2], Some(Ty::Bit(w)))
                        .or_else(|_| self.value_arg(&args[2], None))?;
                    let data = self.data_list(&args[3])?;
                    let (max, _) = self.value_arg(&args[4], None)?;
                    Ext::Hash {
                        dst,
                        algo,
                        base,
                        data,
                        max,
                    }
                }
                "random" => {
                    want(3)?;
                    let (dst, dt) = self.scalar_lvalue(
                        &find_postfix(&args[0]).ok_or_else(|| type_err(&args[0], "destination"))?,
                    )?;
                    let (lo, _) = self.value_arg(&args[1], Some(dt))?;
                    let (hi, _) = self.value_arg(&args[2], Some(dt))?;
                    Ext::Random { dst, lo, hi }
                }
                "recirculate_preserving_field_list" => {
                    want(1)?;
                    Ext::Recirculate(self.const_u8(&args[0])?)
                }
                "recirculate" | "resubmit" | "resubmit_preserving_field_list" => {
                    return Err(unsupported(
                        p,
                        format!("{f} (use recirculate_preserving_field_list)"),
                    ));
                }
                "clone" | "clone_preserving_field_list" => {
                    want(if f == "clone" { 2 } else { 3 })?;
                    let e2e = match args[0]
                        .as_str()
                        .split_whitespace()
                        .collect::<String>()
                        .as_str()
                    {
                        "CloneType.I2E" => false,
                        "CloneType.E2E" => true,
                        c => return Err(type_err(&args[0], format!("clone type {c}"))),
                    };
                    let (session, _) = self.value_arg(&args[1], Some(Ty::Bit(32)))?;
                    let field_list = if f == "clone" {
                        None
                    } else {
                        Some(self.const_u8(&args[2])?)
                    };
                    Ext::Clone {
                        e2e,
                        session,
                        field_list,
                    }
                }
                "truncate" => {
                    want(1)?;
                    Ext::Truncate(self.value_arg(&args[0], Some(Ty::Bit(32)))?.0)
                }
                "update_checksum" | "verify_checksum" => {
                    want(4)?;
                    let (cond, _) = self.value_arg(&args[0], Some(Ty::Bool))?;
                    let data = self.data_list(&args[1])?;
                    let algo = self.algo(&args[3])?;
                    if f == "update_checksum" {
                        let (dst, _) = self.scalar_lvalue(
                            &find_postfix(&args[2])
                                .ok_or_else(|| type_err(&args[2], "destination"))?,
                        )?;
                        Ext::UpdateChecksum {
                            cond,
                            data,
                            dst,
                            algo,
                        }
                    } else {
                        let (sum, st) = self.value_arg(&args[2], None)?;
                        Ext::VerifyChecksum {
                            cond,
                            data,
                            sum,
                            sum_w: st.width(),
                            algo,
                        }
                    }
                }
                "log_msg" => return Ok(()),
                _ => match self.lookup(f) {
                    Some(Binding::Action(a)) => {
                        let a = *a;
                        let params = self.prog.actions[a].params.clone();
                        if params.len() != argc {
                            return Err(type_err(
                                p,
                                format!("action {f} takes {} arguments", params.len()),
                            ));
                        }
                        let mut es = vec![];
                        for (x, (_, s, _)) in args.iter().zip(&params) {
                            let t = self.prog.slot_ty[*s];
                            es.push(self.value_arg(x, Some(t))?.0);
                        }
                        out.push(Stmt::Call(a, es));
                        return Ok(());
                    }
                    _ => return Err(unsupported(&parts[0], format!("function {f}"))),
                },
            };
            out.push(Stmt::Ext(ext, at));
            return Ok(());
        }
        // target.method(args)
        let method = parts[parts.len() - 2].clone();
        if method.as_rule() != Rule::member {
            return Err(unsupported(p, format!("call {}", p.as_str())));
        }
        let m = method.clone().into_inner().as_str().to_string();
        let target = self.walk(&parts[0], &parts[1..parts.len() - 2])?;
        let ext = match (target, m.as_str()) {
            (Res::Binding(Binding::Table(t)), "apply") => {
                want(0)?;
                out.push(Stmt::Apply(t));
                return Ok(());
            }
            (Res::Place(Place::Header(h)), "setValid" | "setInvalid") => {
                want(0)?;
                out.push(Stmt::SetValid(h, m == "setValid"));
                return Ok(());
            }
            (Res::Binding(Binding::Reg(r)), "read") => {
                want(2)?;
                let (dst, dt) = self.scalar_lvalue(
                    &find_postfix(&args[0]).ok_or_else(|| type_err(&args[0], "destination"))?,
                )?;
                if dt != Ty::Bit(self.prog.registers[r].width) {
                    return Err(type_err(
                        &args[0],
                        format!("register is bit<{}>", self.prog.registers[r].width),
                    ));
                }
                let (idx, _) = self
                    .value_arg(&args[1], Some(Ty::Bit(32)))
                    .or_else(|_| self.index_arg(&args[1]))?;
                Ext::RegRead { reg: r, dst, idx }
            }
            (Res::Binding(Binding::Reg(r)), "write") => {
                want(2)?;
                let (idx, _) = self
                    .value_arg(&args[0], Some(Ty::Bit(32)))
                    .or_else(|_| self.index_arg(&args[0]))?;
                let (val, _) =
                    self.value_arg(&args[1], Some(Ty::Bit(self.prog.registers[r].width)))?;
                Ext::RegWrite { reg: r, idx, val }
            }
            (Res::Binding(Binding::Ctr(c)), "count") => {
                want(1)?;
                let (idx, _) = self
                    .value_arg(&args[0], Some(Ty::Bit(32)))
                    .or_else(|_| self.index_arg(&args[0]))?;
                Ext::Count { ctr: c, idx }
            }
            (Res::Binding(Binding::PacketIn), "extract") => {
                want(1)?;
                let pe = find_postfix(&args[0]).ok_or_else(|| type_err(&args[0], "header"))?;
                let ap: Vec<P> = pe.into_inner().collect();
                match self.walk(&ap[0], &ap[1..])? {
                    Res::Place(Place::Header(h)) => Ext::Extract(h),
                    Res::StackNext(s) => Ext::ExtractNext(s),
                    _ => return Err(type_err(&args[0], "extract needs a header")),
                }
            }
            (Res::Binding(Binding::PacketIn), "advance") => {
                want(1)?;
                Ext::Advance(self.value_arg(&args[0], Some(Ty::Bit(32)))?.0)
            }
            (Res::Binding(Binding::PacketOut), "emit") => {
                want(1)?;
                let pe = find_postfix(&args[0]).ok_or_else(|| type_err(&args[0], "header"))?;
                let ap: Vec<P> = pe.into_inner().collect();
                let mut hs = vec![];
                match self.walk(&ap[0], &ap[1..])? {
                    Res::Place(pl) => self.headers_of(&pl, &mut hs),
                    _ => return Err(type_err(&args[0], "emit needs a header, stack or struct")),
                }
                Ext::Emit(hs)
            }
            (_, m) => return Err(unsupported(p, format!("method {m} here"))),
        };
        out.push(Stmt::Ext(ext, at));
        Ok(())
    }

    fn index_arg(&mut self, x: &P) -> Result<(Expr, Ty), LoadError> {
        let (e, t) = self.expr(x)?;
        match t {
            Ty::Bit(w) if w <= 32 => Ok((Expr::Cast(Box::new(e), 32), Ty::Bit(32))),
            _ => Err(type_err(x, "index must be bit<N> with N <= 32")),
        }
    }

    fn headers_of(&self, p: &Place, out: &mut Vec<HdrId>) {
        match p {
            Place::Header(h) => out.push(*h),
            Place::Stack(s) => out.extend_from_slice(&self.prog.stacks[*s].elems),
            Place::Struct(m) => m.iter().for_each(|(_, p)| self.headers_of(p, out)),
            Place::Scalar(..) => {}
        }
    }

    pub(crate) fn transition(&mut self, t: &P) -> Result<Trans, LoadError> {
        let inner = t
            .clone()
            .into_inner()
            .next()
            .ok_or_else(|| type_err(t, "transition"))?;
        if inner.as_rule() == Rule::ident {
            return Ok(match self.target(&inner)? {
                Target::Accept => Trans::Accept,
                Target::Reject => Trans::Reject,
                Target::State(s) => Trans::State(s),
            });
        }
        let b: Vec<P> = inner.into_inner().collect();
        let mut keys = vec![];
        let mut tys = vec![];
        for k in b[0].clone().into_inner() {
            let (e, ty) = self.expr(&k)?;
            if !matches!(ty, Ty::Bit(_) | Ty::Bool) {
                return Err(type_err(&k, "select keys must be bit<N> or bool"));
            }
            keys.push(e);
            tys.push(ty);
        }
        let mut cases = vec![];
        for c in &b[1..] {
            let cb: Vec<P> = c.clone().into_inner().collect();
            let elems: Vec<P> = cb[0].clone().into_inner().collect();
            let target = self.target(&cb[1])?;
            let mut ks = vec![];
            if elems.len() == 1
                && elems[0]
                    .clone()
                    .into_inner()
                    .next()
                    .is_some_and(|x| x.as_rule() == Rule::dont_care)
            {
                ks = vec![KeyElem::Any; keys.len()];
            } else {
                if elems.len() != keys.len() {
                    return Err(type_err(
                        &cb[0],
                        format!("{} keyset elements for {} keys", elems.len(), keys.len()),
                    ));
                }
                for (el, ty) in elems.iter().zip(&tys) {
                    ks.push(self.key_elem(el, *ty)?);
                }
            }
            cases.push((ks, target));
        }
        Ok(Trans::Select(keys, cases))
    }

    fn key_elem(&mut self, el: &P, ty: Ty) -> Result<KeyElem, LoadError> {
        let x = el
            .clone()
            .into_inner()
            .next()
            .ok_or_else(|| type_err(el, "keyset"))?;
        let cv = |l: &mut Self, p: &P| -> Result<u128, LoadError> {
            let (e, t) = l.expr(p)?;
            let e = l.coerce(e, t, ty, p)?;
            const_eval(&e).ok_or_else(|| unsupported(p, "non-constant keysets (value sets)"))
        };
        Ok(match x.as_rule() {
            Rule::dont_care => KeyElem::Any,
            Rule::mask_elem => {
                let b: Vec<P> = x.clone().into_inner().collect();
                let v = cv(self, &b[0])?;
                let m = cv(self, &b[1])?;
                KeyElem::Mask(v & m, m)
            }
            Rule::range_elem => {
                let b: Vec<P> = x.clone().into_inner().collect();
                KeyElem::Range(cv(self, &b[0])?, cv(self, &b[1])?)
            }
            _ => KeyElem::Value(cv(self, &x)?),
        })
    }

    fn target(&self, p: &P) -> Result<Target, LoadError> {
        Ok(match p.as_str() {
            "accept" => Target::Accept,
            "reject" => Target::Reject,
            s => Target::State(
                *self
                    .states
                    .get(s)
                    .ok_or_else(|| type_err(p, format!("unknown state {s}")))?,
            ),
        })
    }
}

/// The argument expressions of a `call_args` pair.
fn call_args<'i>(call: &P<'i>) -> Vec<P<'i>> {
    call.clone()
        .into_inner()
        .filter(|c| c.as_rule() == Rule::expr_list)
        .flat_map(|l| l.into_inner())
        .collect()
}

/// The first descendant of `p` with rule `r`.
fn find_rule<'i>(p: &P<'i>, r: Rule) -> Option<P<'i>> {
    if p.as_rule() == r {
        return Some(p.clone());
    }
    p.clone().into_inner().find_map(|c| find_rule(&c, r))
}

/// The postfix expression an argument is (arguments parse as full expressions).
fn find_postfix<'i>(p: &P<'i>) -> Option<P<'i>> {
    let mut cur = p.clone();
    loop {
        if cur.as_rule() == Rule::postfix_expr {
            return Some(cur);
        }
        let mut it = cur.clone().into_inner();
        let first = it.next()?;
        if it.next().is_some() {
            return None;
        }
        cur = first;
    }
}
