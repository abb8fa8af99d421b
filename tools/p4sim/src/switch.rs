//! The v1model architecture around the program: parser, verify checksum, ingress, the
//! traffic manager (drop, unicast, multicast replication, ingress clones), egress, compute
//! checksum, deparser, egress clones and recirculation.
//!
//! Behaviour follows BMv2's simple_switch where p4sim models it:
//! - a parser error does not drop the packet: ingress runs with `parser_error` set;
//! - `egress_spec == 511` (`mark_to_drop`) after ingress drops it unless it is multicast;
//!   `mcast_grp != 0` replicates it to the group's (port, rid) replicas;
//! - `recirculate_preserving_field_list(n)` (ingress or egress) sends the deparsed packet
//!   back to the parser instead of out of its port, with the user metadata fields tagged
//!   `@field_list(n)` kept and `instance_type` 4 (BMv2's RECIRC);
//! - an I2E clone is the packet as parsed, before ingress changed it, sent to the session's
//!   port through egress with `instance_type` 1 and the values its field list's metadata
//!   had at the end of ingress; an E2E clone is a copy of the egress
//!   result (headers as egress left them) through egress again with `instance_type` 2;
//! - timestamps are the caller's clock in microseconds (BMv2's unit).
//!
//! p4sim has no queues: `enq_timestamp` equals the egress timestamp and the queue depths
//! are 0. Recirculated packets are handed back to the caller, which chooses when they
//! re-enter (`Switch::reinject`), so a driver can interleave them with new arrivals.

use crate::error::{ControlError, LoadError, PacketError};
use crate::exec::{Ctx, Effects, Env, Flow};
use crate::ir::{Program, Stmt};
use crate::runtime::Runtime;

/// v1model's drop port (`mark_to_drop` sets `egress_spec` to it).
pub const DROP_PORT: u16 = 511;
/// BMv2's instance types.
pub const INSTANCE_NORMAL: u128 = 0;
pub const INSTANCE_INGRESS_CLONE: u128 = 1;
pub const INSTANCE_EGRESS_CLONE: u128 = 2;
pub const INSTANCE_RECIRC: u128 = 4;
pub const INSTANCE_REPLICATION: u128 = 5;
/// Largest packet accepted (jumbo frames).
pub const MAX_PACKET: usize = 16 * 1024;

/// A packet the switch sends, or hands back for recirculation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Tx { port: u16, bytes: Vec<u8> },
    Recirculate(Recirculated),
}

/// A recirculated packet waiting to re-enter the parser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recirculated {
    pub bytes: Vec<u8>,
    /// The port it left on (its `ingress_port` when it comes back).
    pub port: u16,
    /// Preserved user metadata (slot, value).
    pub preserved: Vec<(usize, u128)>,
}

impl Recirculated {
    /// A preserved metadata value (by slot), e.g. to see where a packet is in a search.
    pub fn meta(&self, slot: usize) -> Option<u128> {
        self.preserved
            .iter()
            .find(|(s, _)| *s == slot)
            .map(|&(_, v)| v)
    }
}

/// What happened to packets so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub injected: u64,
    pub passes: u64,
    pub tx: u64,
    pub dropped: u64,
    pub recirculated: u64,
    pub cloned: u64,
    pub replicated: u64,
    pub parser_errors: u64,
}

/// A v1model switch running one program.
#[derive(Clone)]
pub struct Switch {
    pub prog: Program,
    pub rt: Runtime,
    pub stats: SimStats,
    env: Env,
    /// The env after parsing, for I2E clones (kept only for programs that clone).
    parsed: Env,
    clones: bool,
    buf: Vec<u8>,
    keybuf: Vec<u128>,
}

fn has_clone(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|s| match s {
        Stmt::Ext(crate::ir::Ext::Clone { .. }, _) => true,
        Stmt::If(_, a, b) => has_clone(a) || has_clone(b),
        Stmt::Switch(_, arms) => arms.iter().any(|(_, b)| has_clone(b)),
        _ => false,
    })
}

impl Switch {
    /// Loads `src` (P4_16, v1model).
    pub fn load(src: &str, seed: u64) -> Result<Switch, LoadError> {
        Ok(Switch::new(crate::lower::load(src)?, seed))
    }

    pub fn new(prog: Program, seed: u64) -> Switch {
        let clones = has_clone(&prog.ingress)
            || has_clone(&prog.egress)
            || prog.actions.iter().any(|a| has_clone(&a.body));
        Switch {
            rt: Runtime::new(&prog, seed),
            env: Env::new(&prog),
            parsed: Env::new(&prog),
            clones,
            stats: SimStats::default(),
            buf: Vec::with_capacity(2048),
            keybuf: Vec::with_capacity(8),
            prog,
        }
    }

    /// A packet arriving on `port` at `now_ns`; what leaves (or recirculates) goes to `out`.
    pub fn inject(
        &mut self,
        port: u16,
        bytes: &[u8],
        now_ns: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), PacketError> {
        self.stats.injected += 1;
        self.pass(port, bytes, &[], INSTANCE_NORMAL, now_ns, out)
    }

    /// A recirculated packet re-entering the parser.
    pub fn reinject(
        &mut self,
        r: &Recirculated,
        now_ns: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), PacketError> {
        self.pass(r.port, &r.bytes, &r.preserved, INSTANCE_RECIRC, now_ns, out)
    }

    /// Injects a packet and re-injects its recirculations at once until none is left or
    /// `max_passes` passes have run (then `PacketError::PassLimit`); returns what left.
    pub fn run(
        &mut self,
        port: u16,
        bytes: &[u8],
        now_ns: u64,
        max_passes: usize,
    ) -> Result<Vec<(u16, Vec<u8>)>, PacketError> {
        let mut out = vec![];
        let mut tx = vec![];
        self.inject(port, bytes, now_ns, &mut out)?;
        let mut passes = 1;
        while let Some(o) = out.pop() {
            match o {
                Output::Tx { port, bytes } => tx.push((port, bytes)),
                Output::Recirculate(r) => {
                    if passes >= max_passes {
                        return Err(PacketError::PassLimit(max_passes));
                    }
                    passes += 1;
                    self.reinject(&r, now_ns, &mut out)?;
                }
            }
        }
        tx.reverse();
        Ok(tx)
    }

    fn ctx<'a>(&'a mut self, input: &'a [u8], cursor: usize) -> Ctx<'a> {
        Ctx {
            p: &self.prog,
            rt: &mut self.rt,
            env: &mut self.env,
            input,
            cursor,
            out: &mut self.buf,
            fx: Effects::default(),
            keybuf: std::mem::take(&mut self.keybuf),
            exited: false,
        }
    }

    fn pass(
        &mut self,
        port: u16,
        bytes: &[u8],
        preserved: &[(usize, u128)],
        instance: u128,
        now_ns: u64,
        out: &mut Vec<Output>,
    ) -> Result<(), PacketError> {
        if bytes.len() > MAX_PACKET {
            return Err(PacketError::TooLong(bytes.len(), MAX_PACKET));
        }
        self.stats.passes += 1;
        let sm = self.prog.sm;
        let now_us = u128::from(now_ns / 1000) & crate::ir::mask(48);
        self.env.reset();
        for &(s, v) in preserved {
            self.env.slots[s] = v;
        }
        self.env.slots[sm.ingress_port] = u128::from(port) & 0x1ff;
        self.env.slots[sm.packet_length] = bytes.len() as u128;
        self.env.slots[sm.instance_type] = instance;
        self.env.slots[sm.ingress_global_timestamp] = now_us;
        // Parser, verify checksum, ingress.
        let cursor = {
            let mut c = self.ctx(bytes, 0);
            let r = c.parse();
            let cursor = c.cursor;
            self.keybuf = std::mem::take(&mut c.keybuf);
            r.map_err(|e| *e)?;
            cursor
        };
        if self.env.slots[sm.parser_error] != 0 {
            self.stats.parser_errors += 1;
        }
        if self.clones {
            self.parsed.clone_from(&self.env);
        }
        let prog_verify = std::mem::take(&mut self.prog.verify);
        let prog_ingress = std::mem::take(&mut self.prog.ingress);
        let r = self.control(bytes, cursor, &[&prog_verify, &prog_ingress]);
        self.prog.verify = prog_verify;
        self.prog.ingress = prog_ingress;
        let mut fx = r?;
        // Traffic manager.
        if let Some((false, session, fl)) = fx.clone {
            fx.clone = None;
            if let Some(&cport) = self.rt.clone_sessions.get(&session) {
                self.stats.cloned += 1;
                let mut env = self.parsed.clone();
                self.keep_field_list(&mut env, fl);
                // The field list's values are those at the end of ingress (BMv2 copies
                // them from the ingress packet when it makes the clone).
                self.copy_field_list(&mut env, fl);
                env.slots[sm.instance_type] = INSTANCE_INGRESS_CLONE;
                self.egress_copy(Some(env), cport, bytes, cursor, fx, now_us, out)?;
            }
        }
        let grp = self.env.slots[sm.mcast_grp] as u16;
        if grp != 0 {
            let replicas = self.rt.mcast.get(&grp).cloned().unwrap_or_default();
            if replicas.is_empty() {
                self.stats.dropped += 1;
            }
            for (p, rid) in replicas {
                self.stats.replicated += 1;
                let mut env = self.env.clone();
                env.slots[sm.instance_type] = INSTANCE_REPLICATION;
                env.slots[sm.egress_rid] = u128::from(rid);
                self.egress_copy(Some(env), p, bytes, cursor, fx, now_us, out)?;
            }
            return Ok(());
        }
        let spec = self.env.slots[sm.egress_spec] as u16;
        if spec == DROP_PORT && fx.recirculate.is_none() {
            self.stats.dropped += 1;
            return Ok(());
        }
        self.egress_copy(None, spec, bytes, cursor, fx, now_us, out)
    }

    /// Runs control bodies in order on `self.env`; returns their effects.
    fn control(
        &mut self,
        bytes: &[u8],
        cursor: usize,
        bodies: &[&Vec<Stmt>],
    ) -> Result<Effects, PacketError> {
        let mut c = self.ctx(bytes, cursor);
        let mut res = Ok(());
        for b in bodies {
            c.exited = false;
            match c.exec(b) {
                Ok(Flow::Next | Flow::Exit | Flow::Return) => {}
                Err(e) => {
                    res = Err(e);
                    break;
                }
            }
        }
        let fx = c.fx;
        self.keybuf = std::mem::take(&mut c.keybuf);
        res.map(|_| fx).map_err(|e| *e)
    }

    fn keep_field_list(&self, env: &mut Env, fl: Option<u8>) {
        for (s, lists) in &self.prog.meta_slots {
            if !fl.is_some_and(|f| lists.contains(&f)) {
                env.slots[*s] = 0;
            }
        }
    }

    /// Copies the user metadata of field list `fl` from the packet's env into `env`.
    fn copy_field_list(&self, env: &mut Env, fl: Option<u8>) {
        for (s, lists) in &self.prog.meta_slots {
            if fl.is_some_and(|f| lists.contains(&f)) {
                env.slots[*s] = self.env.slots[*s];
            }
        }
    }

    /// One copy through egress, compute checksum and deparser: `env` (a replica, a clone), or
    /// the packet's own env when None.
    #[allow(clippy::too_many_arguments)]
    fn egress_copy(
        &mut self,
        env: Option<Env>,
        port: u16,
        bytes: &[u8],
        cursor: usize,
        ingress_fx: Effects,
        now_us: u128,
        out: &mut Vec<Output>,
    ) -> Result<(), PacketError> {
        let sm = self.prog.sm;
        let saved = env.map(|e| std::mem::replace(&mut self.env, e));
        self.env.slots[sm.egress_port] = u128::from(port) & 0x1ff;
        self.env.slots[sm.egress_spec] = u128::from(port) & 0x1ff;
        self.env.slots[sm.egress_global_timestamp] = now_us;
        self.env.slots[sm.enq_timestamp] = now_us & 0xffff_ffff;
        let egress = std::mem::take(&mut self.prog.egress);
        let compute = std::mem::take(&mut self.prog.compute);
        let deparser = std::mem::take(&mut self.prog.deparser);
        self.buf.clear();
        let r = self.control(bytes, cursor, &[&egress, &compute, &deparser]);
        self.prog.egress = egress;
        self.prog.compute = compute;
        self.prog.deparser = deparser;
        let result = (|| {
            let fx = r?;
            let recirc = fx.recirculate.or(ingress_fx.recirculate);
            let dropped = self.env.slots[sm.egress_spec] as u16 == DROP_PORT;
            let mut pkt = std::mem::take(&mut self.buf);
            pkt.extend_from_slice(&bytes[cursor.min(bytes.len())..]);
            if let Some(n) = fx.truncate.or(ingress_fx.truncate) {
                pkt.truncate(n as usize);
            }
            if let Some((true, session, fl)) = fx.clone
                && let Some(&cport) = self.rt.clone_sessions.get(&session)
                && self.env.slots[sm.instance_type] != INSTANCE_EGRESS_CLONE
            {
                self.stats.cloned += 1;
                let mut env = self.env.clone();
                self.keep_field_list(&mut env, fl);
                env.slots[sm.instance_type] = INSTANCE_EGRESS_CLONE;
                self.egress_copy(
                    Some(env),
                    cport,
                    bytes,
                    cursor,
                    Effects::default(),
                    now_us,
                    out,
                )?;
            }
            if let Some(fl) = recirc {
                self.stats.recirculated += 1;
                let preserved = self
                    .prog
                    .meta_slots
                    .iter()
                    .filter(|(_, l)| l.contains(&fl))
                    .map(|&(s, _)| (s, self.env.slots[s]))
                    .collect();
                out.push(Output::Recirculate(Recirculated {
                    bytes: pkt,
                    port,
                    preserved,
                }));
            } else if dropped {
                self.stats.dropped += 1;
                self.buf = pkt;
            } else {
                self.stats.tx += 1;
                out.push(Output::Tx { port, bytes: pkt });
            }
            Ok(())
        })();
        if let Some(e) = saved {
            self.env = e;
        }
        result
    }

    // Control-plane access by name.

    pub fn register_read(&self, name: &str, index: usize) -> Result<u128, ControlError> {
        let r = self
            .prog
            .register(name)
            .ok_or_else(|| ControlError::NoRegister(name.into()))?;
        self.rt.registers[r]
            .get(index)
            .copied()
            .ok_or(ControlError::Index {
                name: name.into(),
                index,
                size: self.prog.registers[r].size,
            })
    }

    pub fn register_write(
        &mut self,
        name: &str,
        index: usize,
        value: u128,
    ) -> Result<(), ControlError> {
        let r = self
            .prog
            .register(name)
            .ok_or_else(|| ControlError::NoRegister(name.into()))?;
        let w = self.prog.registers[r].width;
        let size = self.prog.registers[r].size;
        let cell = self.rt.registers[r]
            .get_mut(index)
            .ok_or(ControlError::Index {
                name: name.into(),
                index,
                size,
            })?;
        *cell = value & crate::ir::mask(w);
        Ok(())
    }

    /// (packets, bytes) of a counter cell.
    pub fn counter_read(&self, name: &str, index: usize) -> Result<(u64, u64), ControlError> {
        let c = self
            .prog
            .counter(name)
            .ok_or_else(|| ControlError::NoCounter(name.into()))?;
        self.rt.counters[c]
            .get(index)
            .copied()
            .ok_or(ControlError::Index {
                name: name.into(),
                index,
                size: self.prog.counters[c].size,
            })
    }
}
