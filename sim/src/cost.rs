//! The cost model: how long real searchd (with Galera) takes for the statements a sharding
//! helper issues. Under the default profile `fast` nothing is charged (tests stay quick); under
//! `realistic` (`sim { profile = realistic }`, or `MANTICORE_SIM_PROFILE=realistic`; the file
//! wins) the reply to a statement is delayed by what the golden facts measured. Costs are
//! charged by sleeping, never by burning CPU.
//!
//! Every constant cites its source in `golden/facts.md` (§3: three-node cluster, §7: shard moves,
//! §8: DDL costs behind large sharded CREATEs); `docs/sim.md` has the same table.
//!
//! Concurrency: cluster-changing statements (ALTER CLUSTER ADD/DROP/UPDATE nodes, JOIN, DELETE
//! CLUSTER on a primary component) are totally ordered in Galera (TOI), so their cost is charged
//! by the cluster's leader while it holds the cluster's sequencer lock: they are serialised per
//! cluster and hold back the cluster's writes meanwhile, as TOI does. Statements on different
//! clusters are charged in parallel (each cluster is its own Galera group; the facts have no
//! measurement of the contrary). CREATE TABLE and CREATE CLUSTER are local and run in parallel.

use std::time::Duration;

/// Environment variable selecting the profile when the configuration does not.
pub const PROFILE_ENV: &str = "MANTICORE_SIM_PROFILE";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// No costs: every statement answers as fast as the simulator can.
    #[default]
    Fast,
    /// The timings of searchd 29.2.2 with Galera on the golden generator's host.
    Realistic,
}

impl Profile {
    pub fn parse(text: &str) -> Option<Profile> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fast" => Some(Profile::Fast),
            "realistic" => Some(Profile::Realistic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Fast => "fast",
            Profile::Realistic => "realistic",
        }
    }

    /// What `op` costs under this profile.
    pub fn cost(self, op: Op) -> Duration {
        match self {
            Profile::Fast => Duration::ZERO,
            Profile::Realistic => realistic(op),
        }
    }

    /// Delays the caller by the cost of `op` (a no-op under `fast`).
    pub async fn charge(self, op: Op) {
        let cost = self.cost(op);
        if !cost.is_zero() {
            tokio::time::sleep(cost).await;
        }
    }
}

/// An operation with a cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `CREATE TABLE` of one table.
    CreateTable,
    /// `CREATE CLUSTER`.
    CreateCluster,
    /// `ALTER CLUSTER … ADD` of this many tables in one statement.
    AlterAdd { tables: usize },
    /// `ALTER CLUSTER … DROP` (any number of tables).
    AlterDrop,
    /// `ALTER CLUSTER … UPDATE nodes`.
    UpdateNodes,
    /// A state transfer to a joining node (`JOIN CLUSTER`, or a restarted member rejoining):
    /// the cluster's tables and their rows.
    StateTransfer { tables: usize, rows: u64 },
    /// `DELETE CLUSTER` on a primary component of several members (the others leave too).
    DeleteShared,
    /// `DELETE CLUSTER` that only removes the cluster here (a non-primary member, or the only
    /// member).
    DeleteLocal,
    /// Time a restarted node needs before it starts to rejoin its clusters.
    RestartGrace,
}

/// §8: 100 CREATE TABLEs in one call took 0.14 s, 300 took 0.39 s: ≈1.3 ms each.
pub const CREATE_TABLE: Duration = Duration::from_micros(1300);
/// §7 item 3: `CREATE CLUSTER temp_move_0_10k` 0.07 s, `temp_move_0_100k` 0.04 s (40–70 ms).
pub const CREATE_CLUSTER: Duration = Duration::from_millis(55);
/// §7 item 3: `ALTER CLUSTER … DROP` 0.01 s in both moves.
pub const ALTER_DROP: Duration = Duration::from_millis(10);
/// §7 rebalance.75/76: `ALTER CLUSTER h UPDATE nodes` returned after 0.01 s.
pub const UPDATE_NODES: Duration = Duration::from_millis(10);
/// `ALTER CLUSTER … ADD` of n tables costs `ADD_FIXED + ADD_PER_TABLE·n + ADD_QUADRATIC·n²`
/// seconds, a least-squares fit (in log space) through §8's points — 1 table 13–18 ms (15 ms
/// taken), 100 tables 0.3–3.4 s (geometric middle 1.01 s), 300 tables 2.7 s — under the
/// constraint that 3000 tables take at least 60 s (§8: no answer within 60 s). It gives 14.9 ms,
/// 0.93 s, 3.0 s and 60.1 s for those sizes; the cost per table is lowest around
/// `sqrt(ADD_FIXED / ADD_QUADRATIC)` ≈ 40 tables per statement (9.2 ms per table), which is §8's
/// "batches of a few dozen to a hundred are the cheapest per table".
pub const ADD_FIXED: f64 = 0.006;
pub const ADD_PER_TABLE: f64 = 0.0089;
pub const ADD_QUADRATIC: f64 = 3.72e-6;
/// §7 item 5: JOIN CLUSTER returned after 1.04 s (0 rows), 1.05 s (10k), 1.07 s (100k),
/// 1.19 s (1M rows): 1.04 s plus 0.15 s per million rows. (§3: 1.12 s and 1.60 s for a small
/// table; §7 item 3: 2.56 s and 1.08 s under a concurrent writer.) Each transferred table is
/// also created on the joiner ([`CREATE_TABLE`]; not measured).
pub const TRANSFER_FIXED: Duration = Duration::from_millis(1040);
pub const TRANSFER_PER_MILLION_ROWS: Duration = Duration::from_millis(150);
/// §7: DELETE CLUSTER of a primary 2-member cluster returned after 5.05 s (g), 5.06 s and 5.55 s
/// (the temporary move clusters): the middle of that range.
pub const DELETE_SHARED: Duration = Duration::from_millis(5300);
/// §7 rebalance.82: DELETE CLUSTER on a non-primary member returned after 1.59 s. The only
/// member of a cluster has nobody to leave either; it is charged the same (not measured).
pub const DELETE_LOCAL: Duration = Duration::from_millis(1590);
/// A dead peer leaves the view after 4.6–6.5 s (§3: 4.64–5.94 s; §7 item 4: 5.96 s) and a
/// 2-member survivor turns non-primary after 5.77–6.53 s (§7 items 1 and 4): with a check
/// every 200 ms and a direct probe before the eviction, a suspect time of 5.2 s gives about
/// 5.4–5.6 s.
pub const REALISTIC_SUSPECT: Duration = Duration::from_millis(5200);
/// A restarted member was `synced` 1.40–2.43 s after its start in 4 of 8 restarts (§3 rep 2
/// 1.63 s, the seed's restart 1.65 s, after 2 of 3 died 2.43 s; §7 item 2b 1.40 s) and
/// 5.76–7.89 s in the other 4. The model takes the quick path: this grace (ports up after
/// 0.10–0.17 s, `closed` until ≈1.1 s) plus one state transfer ([`TRANSFER_FIXED`]) ≈ 1.45 s.
pub const RESTART_GRACE: Duration = Duration::from_millis(400);

fn realistic(op: Op) -> Duration {
    match op {
        Op::CreateTable => CREATE_TABLE,
        Op::CreateCluster => CREATE_CLUSTER,
        Op::AlterAdd { tables } => add_cost(tables),
        Op::AlterDrop => ALTER_DROP,
        Op::UpdateNodes => UPDATE_NODES,
        Op::StateTransfer { tables, rows } => {
            TRANSFER_FIXED
                + TRANSFER_PER_MILLION_ROWS.mul_f64(rows as f64 / 1_000_000.0)
                + CREATE_TABLE * u32::try_from(tables).unwrap_or(u32::MAX)
        }
        Op::DeleteShared => DELETE_SHARED,
        Op::DeleteLocal => DELETE_LOCAL,
        Op::RestartGrace => RESTART_GRACE,
    }
}

/// `ALTER CLUSTER … ADD` of `n` tables (see [`ADD_FIXED`]).
pub fn add_cost(n: usize) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let n = n as f64;
    Duration::from_secs_f64(ADD_FIXED + ADD_PER_TABLE * n + ADD_QUADRATIC * n * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn profiles_parse() {
        assert_eq!(Profile::parse("fast"), Some(Profile::Fast));
        assert_eq!(Profile::parse(" Realistic "), Some(Profile::Realistic));
        assert_eq!(Profile::parse("slow"), None);
        assert_eq!(Profile::default(), Profile::Fast);
    }

    #[test]
    fn fast_costs_nothing() {
        for op in [
            Op::CreateTable,
            Op::AlterAdd { tables: 3000 },
            Op::DeleteShared,
            Op::StateTransfer {
                tables: 1,
                rows: 1_000_000,
            },
        ] {
            assert_eq!(Profile::Fast.cost(op), Duration::ZERO);
        }
    }

    /// The ADD curve goes through the measured points of facts.md §8.
    #[test]
    fn add_curve_fits_the_facts() {
        let one = secs(add_cost(1));
        assert!((0.013..=0.018).contains(&one), "{one}");
        let hundred = secs(add_cost(100));
        assert!((0.3..=3.4).contains(&hundred), "{hundred}");
        let three_hundred = secs(add_cost(300));
        assert!((2.4..=3.2).contains(&three_hundred), "{three_hundred}");
        assert!(secs(add_cost(3000)) >= 60.0);
        // Superlinear, with the cheapest batch in the dozens.
        let per_table = |n: usize| secs(add_cost(n)) / n as f64;
        let best = (1..=3000).min_by(|a, b| per_table(*a).total_cmp(&per_table(*b)));
        assert!(
            best.is_some_and(|n| (20..=100).contains(&n)),
            "cheapest batch {best:?}"
        );
        assert!(per_table(3000) > per_table(300));
    }

    #[test]
    fn transfer_cost_grows_with_rows() {
        let p = Profile::Realistic;
        let empty = secs(p.cost(Op::StateTransfer { tables: 1, rows: 0 }));
        let million = secs(p.cost(Op::StateTransfer {
            tables: 1,
            rows: 1_000_000,
        }));
        assert!((1.0..1.1).contains(&empty), "{empty}");
        assert!((1.15..1.25).contains(&million), "{million}");
        assert!(secs(p.cost(Op::DeleteShared)) >= 5.05);
        assert!(secs(p.cost(Op::DeleteLocal)) < 2.0);
    }
}
