//! Field chains that remember what they found in data shared between renders.
//!
//! `.Values.global.proxy.image` is three map lookups (a dozen string comparisons each) every
//! time it runs, though its first step reaches the same `.Values` map, loaded once with the
//! configuration, in every render. A chain therefore keeps the value its steps gave from a
//! container: the map it starts from (a variable or `with` holding part of `.Values`), else the
//! map or struct its first step reached. When a later run reaches that same container there,
//! the steps are skipped. The first step, usually into the render's own data, instead finds
//! its struct field where it was last time (`Path::slot`).
//!
//! No invalidation is needed. The key is held as a `Weak`: its allocation outlives every `Arc`
//! to it, so no other container can appear at that address, and a container that has a `Weak`
//! to it cannot change in place (`Arc::get_mut` refuses; `Arc::make_mut` moves the value out).
//! A memo is filled only when one container is met twice in a row, so the containers each
//! render builds afresh (the pod's metadata) normally leave it empty.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use crate::value::{Map, Struct, Value};

/// The field names of a chain (`.A.B.C`), with the chain's memo.
#[derive(Default)]
pub(crate) struct Path {
    names: Vec<String>,
    memo: Memo,
}

impl From<Vec<String>> for Path {
    fn from(names: Vec<String>) -> Path {
        let mut path = Path::default();
        path.extend(names);
        path
    }
}

impl Deref for Path {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.names
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.names.fmt(f)
    }
}

impl Path {
    /// Adds steps to the chain (`$x.A`, `.A.B` read as one chain).
    pub(crate) fn extend(&mut self, names: impl IntoIterator<Item = String>) {
        self.names.extend(names);
    }

    /// What the chain's remaining steps gave last time from this same container.
    pub(crate) fn recall(&self, container: &Value) -> Option<&Value> {
        let entry = self.memo.entry.get()?;
        let same = match (&entry.key, container) {
            (Key::Map(w), Value::Map(m)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(m)),
            (Key::Struct(w), Value::Struct(s)) => std::ptr::eq(w.as_ptr(), Arc::as_ptr(s)),
            _ => false,
        };
        same.then_some(&entry.value)
    }

    /// The struct field the first step names, found by its exact name where it was last
    /// time. Chains mostly start at the template's data, the same kind of struct on every
    /// run, so checking one name beats scanning for it. (Later steps gain nothing: there,
    /// lenient structs often lack the field, and a miss costs a second scan.)
    pub(crate) fn slot<'v>(&self, step: usize, s: &'v Struct) -> Option<&'v Value> {
        let name = self.names.first().filter(|_| step == 0)?;
        if let Some((k, v)) = s.fields.get(self.memo.slot.load(Ordering::Relaxed))
            && **k == **name
        {
            return Some(v);
        }
        let at = s.fields.iter().position(|(k, _)| **k == **name)?;
        self.memo.slot.store(at, Ordering::Relaxed);
        Some(&s.fields[at].1)
    }

    /// Notes that the chain's remaining steps gave `value` from `container`.
    pub(crate) fn remember(&self, container: &Value, value: &Value) {
        let memo = &self.memo;
        if memo.entry.get().is_some() {
            return;
        }
        let Some(address) = address(container) else {
            return;
        };
        // Only an address, compared and never followed: a stale one just delays the memo.
        if memo.seen.load(Ordering::Relaxed) != address {
            memo.seen.store(address, Ordering::Relaxed);
            return;
        }
        let key = match container {
            Value::Map(m) => Key::Map(Arc::downgrade(m)),
            Value::Struct(s) => Key::Struct(Arc::downgrade(s)),
            _ => return,
        };
        let _ = memo.entry.set(Entry {
            key,
            value: value.clone(),
        });
    }
}

#[derive(Default)]
struct Memo {
    /// The container the first step reached last time.
    seen: AtomicUsize,
    /// Where the first step's field was in the struct it last walked (see [`Path::slot`]).
    slot: AtomicUsize,
    entry: OnceLock<Entry>,
}

struct Entry {
    key: Key,
    value: Value,
}

/// The key container, held weakly: the allocation stays, so its address is not reused.
enum Key {
    Map(Weak<Map>),
    Struct(Weak<Struct>),
}

/// A map's or struct's address: the identity memos are keyed on.
fn address(v: &Value) -> Option<usize> {
    match v {
        Value::Map(m) => Some(Arc::as_ptr(m) as usize),
        Value::Struct(s) => Some(Arc::as_ptr(s) as usize),
        _ => None,
    }
}
