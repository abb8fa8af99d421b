//! The commands both protocols execute on a [`Store`]: memcached's storage modes (set, add,
//! replace, append, prepend, cas), delete, incr/decr with memcached's rules, touch, and the
//! Redis-side operations (integer increment, deadlines, TTL).

use crate::expiry::{Clock, Deadline};
use crate::numeric::{mc_strtoull, push_i64, push_u64, redis_i64};
use crate::store::Store;
use alloc::vec::Vec;

/// How a store command treats an existing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Store unconditionally.
    Set,
    /// Only if the key is absent.
    Add,
    /// Only if the key is present.
    Replace,
    /// Append to a present item (its flags and deadline are kept).
    Append,
    /// Prepend to a present item (its flags and deadline are kept).
    Prepend,
    /// Only if the key is present with this CAS id.
    Cas(u64),
}

/// What a store command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Stored, with this new CAS id.
    Stored(u64),
    /// The mode's condition failed (add on a present key, replace/append on an absent one).
    NotStored,
    /// CAS mismatch.
    Exists,
    /// CAS (or a binary-protocol CAS) on an absent key.
    NotFound,
    /// The item can never fit.
    TooLarge,
}

/// Why incr/decr failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    /// No such key.
    NotFound,
    /// The value is not a number (memcached's rules) or not an `i64` (Redis's).
    NonNumeric,
    /// Redis only: the result would overflow `i64`.
    Overflow,
    /// A binary-protocol CAS mismatch.
    Exists,
}

impl Store {
    /// memcached's storage commands. `cas` other than 0 in any mode also requires the item's
    /// CAS id to match (the binary protocol's rule; ASCII passes 0 except for `cas`).
    pub fn store(
        &mut self,
        mode: Mode,
        key: &[u8],
        data: &[u8],
        flags: u32,
        deadline: Deadline,
        now: Clock,
    ) -> Outcome {
        self.stats.cmd_set += 1;
        let (want_cas, mode) = match mode {
            Mode::Cas(c) => (c, Mode::Set),
            m => (0, m),
        };
        let existing = self
            .peek(key, now)
            .map(|it| (it.cas, it.flags, it.deadline, it.value.len()));
        match (mode, existing) {
            (Mode::Add, Some(_)) => return Outcome::NotStored,
            (Mode::Replace | Mode::Append | Mode::Prepend, None) if want_cas == 0 => {
                return Outcome::NotStored;
            }
            (_, None) if want_cas != 0 => return Outcome::NotFound,
            (_, Some((cas, ..))) if want_cas != 0 && cas != want_cas => return Outcome::Exists,
            _ => {}
        }
        let (value, flags, deadline) = match (mode, existing) {
            (Mode::Append | Mode::Prepend, Some((_, f, d, len))) => {
                if !self.fits(key.len(), len.saturating_add(data.len())) {
                    return Outcome::TooLarge;
                }
                let old = self.peek(key, now).map(|it| core::mem::take(&mut it.value));
                let old = old.unwrap_or_default();
                let mut v = Vec::with_capacity(old.len() + data.len());
                if mode == Mode::Append {
                    v.extend_from_slice(&old);
                    v.extend_from_slice(data);
                } else {
                    v.extend_from_slice(data);
                    v.extend_from_slice(&old);
                }
                (v, f, d)
            }
            _ => (data.to_vec(), flags, deadline),
        };
        if !self.fits(key.len(), value.len()) {
            if mode == Mode::Set {
                self.remove(key, now);
            }
            return Outcome::TooLarge;
        }
        match self.insert(key, value, flags, deadline, now) {
            Some(cas) => Outcome::Stored(cas),
            None => Outcome::TooLarge,
        }
    }

    /// Delete `key`, if its CAS id is `cas` (0: any). Returns `Err(Exists)` on a mismatch.
    pub fn delete(&mut self, key: &[u8], cas: u64, now: Clock) -> Result<(), DeltaError> {
        let Some(it) = self.peek(key, now) else {
            return Err(DeltaError::NotFound);
        };
        if cas != 0 && it.cas != cas {
            return Err(DeltaError::Exists);
        }
        self.remove(key, now);
        Ok(())
    }

    /// memcached's incr/decr: the value must parse as `strtoull` does; incr wraps at 2^64,
    /// decr stops at 0. As memcached does in place, a result shorter than the old value is
    /// padded with spaces to the old length. Returns the new value and CAS id.
    pub fn incr_decr(
        &mut self,
        key: &[u8],
        delta: u64,
        incr: bool,
        cas: u64,
        now: Clock,
    ) -> Result<(u64, u64), DeltaError> {
        let new_cas = self.take_cas();
        let it = self.peek(key, now).ok_or(DeltaError::NotFound)?;
        if cas != 0 && it.cas != cas {
            return Err(DeltaError::Exists);
        }
        if it.value.is_empty() {
            return Err(DeltaError::NonNumeric);
        }
        let v = mc_strtoull(&it.value).ok_or(DeltaError::NonNumeric)?;
        let n = if incr {
            v.wrapping_add(delta)
        } else {
            v.saturating_sub(delta)
        };
        let mut digits = Vec::with_capacity(20);
        push_u64(&mut digits, n);
        if digits.len() <= it.value.len() {
            digits.resize(it.value.len(), b' ');
        }
        // Same length or longer: the cost may grow by at most 20 bytes; re-insert to account.
        let (flags, deadline) = (it.flags, it.deadline);
        if digits.len() == it.value.len() {
            it.value = digits;
            it.cas = new_cas;
            return Ok((n, new_cas));
        }
        let cas = self
            .insert(key, digits, flags, deadline, now)
            .ok_or(DeltaError::NotFound)?;
        Ok((n, cas))
    }

    /// memcached's touch: a new deadline for a live item.
    pub fn touch(&mut self, key: &[u8], deadline: Deadline, now: Clock) -> bool {
        match self.peek(key, now) {
            Some(it) => {
                it.deadline = deadline;
                true
            }
            None => false,
        }
    }

    /// Redis INCRBY: the value must be a strict `i64`; the deadline is kept; an absent key
    /// counts as 0 and is created with flags 0.
    pub fn redis_incr(&mut self, key: &[u8], delta: i64, now: Clock) -> Result<i64, DeltaError> {
        let (old, flags, deadline) = match self.peek(key, now) {
            Some(it) => (
                redis_i64(&it.value).ok_or(DeltaError::NonNumeric)?,
                it.flags,
                it.deadline,
            ),
            None => (0, 0, Deadline::Never),
        };
        let n = old.checked_add(delta).ok_or(DeltaError::Overflow)?;
        let mut digits = Vec::with_capacity(20);
        push_i64(&mut digits, n);
        self.insert(key, digits, flags, deadline, now)
            .ok_or(DeltaError::NotFound)?;
        Ok(n)
    }

    /// Set a live item's deadline (Redis EXPIRE family); false if absent.
    pub fn set_deadline(&mut self, key: &[u8], deadline: Deadline, now: Clock) -> bool {
        self.touch(key, deadline, now)
    }

    /// A live item's deadline, `None` if absent.
    pub fn deadline(&mut self, key: &[u8], now: Clock) -> Option<Deadline> {
        self.peek(key, now).map(|it| it.deadline)
    }

    /// Live items and how many of them have a deadline.
    pub fn count_live(&self, now: Clock) -> (usize, usize) {
        let (mut n, mut with_ttl) = (0, 0);
        self.for_each_live(now, |it| {
            n += 1;
            if it.deadline != Deadline::Never {
                with_ttl += 1;
            }
        });
        (n, with_ttl)
    }
}
