//! How rules are spelled for `iptables-restore`, and how live `iptables-save` output is read
//! back. Pure.
//!
//! Rendering follows Istio's `buildRestore` (spec §4.5): tables alphabetically, `* <table>`,
//! `-N` for every non-builtin chain in first-use order then for chains only jumped to, the
//! rules in generation order, `COMMIT`. Reading back never compares rule text with the plan
//! (the kernel reorders matches); `apply` asks iptables itself with `-C`.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::{Op, Rule, Table, is_builtin_chain, is_builtin_target};

/// The `iptables-restore --noflush` input that creates `rules` (one family).
pub fn render(rules: &[Rule]) -> String {
    let mut per_table: BTreeMap<Table, Vec<String>> = BTreeMap::new();
    let mut seen: BTreeSet<(Table, &str)> = BTreeSet::new();
    for r in rules {
        if !is_builtin_chain(&r.chain) && seen.insert((r.table, r.chain.as_str())) {
            per_table
                .entry(r.table)
                .or_default()
                .push(format!("-N {}", r.chain));
        }
    }
    for r in rules {
        if let Some(target) = r.jump_target()
            && !is_builtin_target(target)
            && seen.insert((r.table, target))
        {
            per_table
                .entry(r.table)
                .or_default()
                .push(format!("-N {target}"));
        }
    }
    for r in rules {
        per_table.entry(r.table).or_default().push(rule_line(r));
    }
    let mut out = String::new();
    for (table, lines) in per_table {
        out.push_str(&format!("* {table}\n"));
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// `-A chain args` or `-I chain N args`.
pub fn rule_line(r: &Rule) -> String {
    let head = match r.op {
        Op::Append => format!("-A {}", r.chain),
        Op::Insert(n) => format!("-I {} {n}", r.chain),
    };
    if r.args.is_empty() {
        head
    } else {
        format!("{head} {}", r.args.join(" "))
    }
}

/// The arguments of `iptables -t T -C chain ...` that check `r` exists (position dropped).
pub fn check_args(r: &Rule) -> Vec<String> {
    let mut args = vec![
        "-t".into(),
        r.table.name().into(),
        "-C".into(),
        r.chain.clone(),
    ];
    args.extend(r.args.iter().cloned());
    args
}

/// What `iptables-save` shows of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    /// Every chain `ISTIO_*` with its rules (save spelling, `-A ...` lines).
    pub istio_chains: BTreeMap<String, Vec<String>>,
    /// Rules in built-in chains that jump to an `ISTIO_*` chain (save spelling).
    pub istio_jumps: Vec<String>,
    /// Number of rules of any kind (`-A` lines) in the table.
    pub rule_count: usize,
}

/// Parsed `iptables-save` output: only the tables it printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveState {
    pub tables: BTreeMap<Table, TableState>,
}

impl SaveState {
    /// Reads `iptables-save` text; unknown tables (`security`) are skipped.
    pub fn parse(save: &str) -> SaveState {
        let mut state = SaveState::default();
        let mut current: Option<Table> = None;
        for line in save.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') || line == "COMMIT" {
                continue;
            }
            if let Some(name) = line.strip_prefix('*') {
                current = Table::from_name(name.trim());
                if let Some(t) = current {
                    state.tables.entry(t).or_default();
                }
                continue;
            }
            let Some(table) = current.and_then(|t| state.tables.get_mut(&t)) else {
                continue;
            };
            if let Some(decl) = line.strip_prefix(':') {
                let chain = decl.split_whitespace().next().unwrap_or_default();
                if chain.starts_with("ISTIO") {
                    table.istio_chains.entry(chain.to_string()).or_default();
                }
                continue;
            }
            let mut words = line.split_whitespace();
            if words.next() != Some("-A") {
                continue;
            }
            let Some(chain) = words.next() else { continue };
            table.rule_count += 1;
            if chain.starts_with("ISTIO") {
                table
                    .istio_chains
                    .entry(chain.to_string())
                    .or_default()
                    .push(line.to_string());
            } else if jump_target_of(line).is_some_and(|t| t.starts_with("ISTIO")) {
                table.istio_jumps.push(line.to_string());
            }
        }
        state
    }

    /// Whether any trace of ours is present.
    pub fn has_istio(&self) -> bool {
        self.tables
            .values()
            .any(|t| !t.istio_chains.is_empty() || !t.istio_jumps.is_empty())
    }

    /// Whether the table holds any rule at all (backend detection counts rules, not lines:
    /// an empty table printed by `-save` is not "existing rules").
    pub fn rule_count(&self) -> usize {
        self.tables.values().map(|t| t.rule_count).sum()
    }
}

fn jump_target_of(line: &str) -> Option<&str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[0] == "-j" || w[0] == "--jump")
        .map(|w| w[1])
}

/// Does the live table match the plan's shape: the same `ISTIO_*` chains with the same
/// number of rules? (Rule contents are checked separately with `-C`.)
pub fn same_shape(state: &SaveState, rules: &[Rule]) -> bool {
    let mut want: BTreeMap<(Table, String), usize> = BTreeMap::new();
    for r in rules {
        if !is_builtin_chain(&r.chain) {
            *want.entry((r.table, r.chain.clone())).or_default() += 1;
        }
        if let Some(t) = r.jump_target().filter(|t| !is_builtin_target(t)) {
            want.entry((r.table, t.to_string())).or_default();
        }
    }
    let mut have: BTreeMap<(Table, String), usize> = BTreeMap::new();
    for (table, ts) in &state.tables {
        for (chain, lines) in &ts.istio_chains {
            have.insert((*table, chain.clone()), lines.len());
        }
    }
    want == have
}

/// The restore input that removes what we installed from the given tables, and installs
/// `rules` in the same per-table transaction, so no packet sees a table without capture.
///
/// `present_plan_rules` are the plan's rules in built-in chains that do not jump to one of our
/// chains (interface exclusions, TPROXY marks) and that `-C` found live: they are ours too.
pub fn replace(state: &SaveState, present_plan_rules: &[Rule], rules: &[Rule]) -> String {
    let mut out = String::new();
    let install = render(rules);
    let mut install_tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in install.lines() {
        if let Some(t) = line.strip_prefix("* ") {
            current = t.to_string();
        } else if line != "COMMIT" {
            install_tables
                .entry(current.clone())
                .or_default()
                .push(line.to_string());
        }
    }
    let planned_chains: BTreeSet<(String, String)> = install_tables
        .iter()
        .flat_map(|(t, lines)| {
            lines
                .iter()
                .filter_map(move |l| l.strip_prefix("-N ").map(|c| (t.clone(), c.to_string())))
        })
        .collect();
    for table in Table::ALL {
        let name = table.name();
        let live = state.tables.get(&table);
        let removals = live
            .is_some_and(|t| !t.istio_chains.is_empty() || !t.istio_jumps.is_empty())
            || present_plan_rules.iter().any(|r| r.table == table);
        let adds = install_tables.get(name);
        if !removals && adds.is_none() {
            continue;
        }
        out.push_str(&format!("* {name}\n"));
        if let Some(t) = live {
            for jump in &t.istio_jumps {
                out.push_str(&format!("-D{}\n", &jump[2..]));
            }
        }
        for r in present_plan_rules.iter().filter(|r| r.table == table) {
            out.push_str(&format!("-D {} {}\n", r.chain, r.args.join(" ")));
        }
        let mut kept: BTreeSet<String> = BTreeSet::new();
        if let Some(t) = live {
            // Flush every old chain first so none is still referenced when one is deleted.
            for chain in t.istio_chains.keys() {
                out.push_str(&format!("-F {chain}\n"));
            }
            for chain in t.istio_chains.keys() {
                if planned_chains.contains(&(name.to_string(), chain.clone())) {
                    kept.insert(chain.clone());
                } else {
                    out.push_str(&format!("-X {chain}\n"));
                }
            }
        }
        for line in adds.into_iter().flatten() {
            match line.strip_prefix("-N ") {
                Some(chain) if kept.contains(chain) => {}
                _ => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Restore input (to run *without* `--noflush`) that puts back, table by table, what
/// `before` (an `iptables-save` dump) held for every table that `written` touched; a table
/// absent before is emptied.
pub fn rollback(before: &str, written: &str) -> String {
    let touched: Vec<&str> = written
        .lines()
        .filter_map(|l| l.strip_prefix("* "))
        .collect();
    let mut out = String::new();
    for table in touched {
        let mut section = Vec::new();
        let mut inside = false;
        for line in before.lines() {
            if let Some(name) = line.strip_prefix('*') {
                inside = name.trim() == table;
            }
            if inside {
                section.push(line);
                if line == "COMMIT" {
                    inside = false;
                }
            }
        }
        if section.is_empty() {
            out.push_str(&format!("*{table}\nCOMMIT\n"));
        } else {
            for line in section {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = "\
# Generated by iptables-nft-save v1.8.9 (nf_tables) on Wed Nov 25 22:00:00 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_OUTPUT - [0:0]
:OTHER - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A PREROUTING -p tcp -j OTHER
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A OTHER -j RETURN
COMMIT
# Completed on Wed Nov 25 22:00:00 2026
";

    #[test]
    fn reads_our_chains_and_jumps_and_leaves_others_alone() {
        let state = SaveState::parse(SAVED);
        let nat = &state.tables[&Table::Nat];
        assert_eq!(nat.istio_chains.len(), 2);
        assert_eq!(nat.istio_chains["ISTIO_INBOUND"].len(), 1);
        assert!(nat.istio_chains["ISTIO_OUTPUT"].is_empty());
        assert_eq!(
            nat.istio_jumps,
            vec![
                "-A PREROUTING -p tcp -j ISTIO_INBOUND",
                "-A OUTPUT -j ISTIO_OUTPUT"
            ]
        );
        assert_eq!(state.rule_count(), 5);
        assert!(state.has_istio());
    }

    #[test]
    fn rollback_restores_touched_tables_and_empties_new_ones() {
        let written = "* nat\n-N ISTIO_X\nCOMMIT\n* raw\n-N ISTIO_Y\nCOMMIT\n";
        let text = rollback(SAVED, written);
        assert!(
            text.starts_with("*nat\n:PREROUTING ACCEPT [0:0]\n"),
            "{text}"
        );
        assert!(
            text.contains("-A OTHER -j RETURN\nCOMMIT\n*raw\nCOMMIT\n"),
            "{text}"
        );
    }

    #[test]
    fn every_prefix_of_a_save_dump_is_read_without_panicking() {
        let rules = vec![Rule {
            table: Table::Nat,
            chain: "ISTIO_OUTPUT".into(),
            op: Op::Insert(1),
            args: vec!["-j".into(), "RETURN".into()],
        }];
        for end in 0..=SAVED.len() {
            let Some(prefix) = SAVED.get(..end) else {
                continue;
            };
            let state = SaveState::parse(prefix);
            let text = replace(&state, &rules, &rules);
            assert!(
                text.is_empty() || text.ends_with("COMMIT\n"),
                "{end}: {text}"
            );
            let _ = rollback(prefix, &text);
        }
    }

    #[test]
    fn an_empty_table_is_no_existing_rules() {
        let state =
            SaveState::parse("*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n");
        assert_eq!(state.rule_count(), 0);
        assert!(!state.has_istio());
    }

    #[test]
    fn replacing_removes_old_rules_and_installs_new_ones_in_one_table_commit() {
        let state = SaveState::parse(SAVED);
        let rules = vec![Rule {
            table: Table::Nat,
            chain: "ISTIO_INBOUND".into(),
            op: Op::Append,
            args: vec!["-p".into(), "tcp".into(), "-j".into(), "RETURN".into()],
        }];
        let text = replace(&state, &[], &rules);
        assert_eq!(
            text,
            "* nat\n\
             -D PREROUTING -p tcp -j ISTIO_INBOUND\n\
             -D OUTPUT -j ISTIO_OUTPUT\n\
             -F ISTIO_INBOUND\n\
             -F ISTIO_OUTPUT\n\
             -X ISTIO_OUTPUT\n\
             -A ISTIO_INBOUND -p tcp -j RETURN\n\
             COMMIT\n"
        );
    }
}
