//! Which rules, as data. Pure: no I/O, the same plan for `--dry-run`, apply and cleanup.
//!
//! Two planners mirror Istio's two generators: [`iptables::plan`] (the `istio-iptables` rule
//! builder, rendered by `restore.rs`) and [`nftables::plan`] (the native `inet` tables of
//! `istio-nftables`). Both follow the emission order of Istio's `capture/run.go`, because rule
//! order inside a chain is behaviour and the goldens pin it.

pub mod iptables;
pub mod nftables;

use std::fmt;

/// An iptables address family: one restore per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The binary-name prefix (`iptables`, `ip6tables`).
    pub fn prefix(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

/// iptables tables, in the order restore input lists them (alphabetical, as Istio sorts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Filter,
    Mangle,
    Nat,
    Raw,
}

impl Table {
    pub const ALL: [Table; 4] = [Table::Filter, Table::Mangle, Table::Nat, Table::Raw];

    pub fn name(self) -> &'static str {
        match self {
            Table::Filter => "filter",
            Table::Mangle => "mangle",
            Table::Nat => "nat",
            Table::Raw => "raw",
        }
    }

    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Append to the chain, or insert at a 1-based position (`-I chain N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Append,
    Insert(u32),
}

/// One iptables rule: where it goes and its match/target arguments in Istio's spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub table: Table,
    pub chain: String,
    pub op: Op,
    pub args: Vec<String>,
}

impl Rule {
    /// The chain this rule jumps to, when the target is a chain of ours.
    pub fn jump_target(&self) -> Option<&str> {
        let n = self.args.len();
        (n >= 2 && self.args[n - 2] == "-j").then(|| self.args[n - 1].as_str())
    }
}

/// Chains the kernel provides; never created or deleted by us.
pub fn is_builtin_chain(chain: &str) -> bool {
    matches!(
        chain,
        "INPUT" | "OUTPUT" | "FORWARD" | "PREROUTING" | "POSTROUTING"
    )
}

/// Targets that are not chains.
pub fn is_builtin_target(target: &str) -> bool {
    matches!(target, "ACCEPT" | "RETURN" | "DROP") || is_builtin_chain(target)
}

/// The whole iptables plan: rules per family in generation order. `v6` is empty when the pod
/// has no IPv6 (then no `ip6tables-restore` runs at all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub v4: Vec<Rule>,
    pub v6: Vec<Rule>,
    pub ipv6: bool,
}

impl Plan {
    pub fn family(&self, family: Family) -> &[Rule] {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// Families that get a restore, in Istio's order.
    pub fn families(&self) -> Vec<Family> {
        if self.ipv6 {
            vec![Family::V4, Family::V6]
        } else {
            vec![Family::V4]
        }
    }
}

#[cfg(test)]
mod tests;
