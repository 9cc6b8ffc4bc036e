//! Pure decisions of the cluster supervisor: quorum, who leads, and what a node does about a
//! cluster given what it knows of its peers. No I/O here.

use std::collections::BTreeSet;

use super::messages::Digest;
use super::{NodeState, Status};
use crate::store::cluster::ClusterMeta;

/// Galera's rule: a component is primary when it holds more than half of the last primary
/// component.
pub fn has_quorum<'a>(base: impl IntoIterator<Item = &'a str>, present: &BTreeSet<String>) -> bool {
    let base: BTreeSet<&str> = base.into_iter().collect();
    if base.is_empty() {
        return true;
    }
    let kept = base.iter().filter(|id| present.contains(**id)).count();
    kept * 2 > base.len()
}

/// What the supervisor should do about one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// This node leads: drop members that stopped answering.
    Evict(Vec<String>),
    /// The leader is gone (or no primary exists) and this node is the one to form a new
    /// primary component from these reachable nodes (itself included).
    TakeOver(Vec<String>),
    /// A primary component exists elsewhere (or moved on without this node): get a full state
    /// transfer through this node.
    Rejoin(String),
}

/// Everything [`decide`] looks at.
pub struct Situation<'a> {
    pub me: &'a str,
    pub meta: &'a ClusterMeta,
    pub status: Status,
    pub state: NodeState,
    /// Peers currently answering heartbeats (never this node).
    pub alive: &'a BTreeSet<String>,
    /// What each answering peer reports about this cluster (absent: not a member there).
    pub digests: &'a [(String, Digest)],
    /// This follower has trailed its leader (an older view or fewer writes) for longer than the
    /// suspect time: a view or a write it should have received never arrived.
    pub trailing: bool,
    /// This node received the cluster by a state transfer less than the suspect time ago: a
    /// leader that reported nothing about it yet has simply not sent a heartbeat since.
    pub just_installed: bool,
}

impl Situation<'_> {
    fn digest(&self, id: &str) -> Option<&Digest> {
        self.digests.iter().find(|(p, _)| p == id).map(|(_, d)| d)
    }

    /// A reachable node leading a primary component that is newer than (or excludes) this node.
    fn primary_elsewhere(&self) -> Option<String> {
        self.digests
            .iter()
            .filter(|(_, d)| d.primary)
            .max_by_key(|(_, d)| d.epoch)
            .map(|(_, d)| d.leader.clone())
    }
}

pub fn decide(s: &Situation) -> Action {
    if s.state == NodeState::Joining || s.state == NodeState::Donor {
        return Action::Nothing;
    }
    let view = &s.meta.view;
    if s.status == Status::Primary {
        if view.leader == s.me {
            let dead: Vec<String> = view
                .member_ids()
                .filter(|id| *id != s.me && !s.alive.contains(*id))
                .map(str::to_string)
                .collect();
            if !dead.is_empty() {
                return Action::Evict(dead);
            }
            // Another primary with a newer view (after a heal or a bootstrap elsewhere) wins.
            if let Some(d) = s
                .digests
                .iter()
                .map(|(_, d)| d)
                .find(|d| d.primary && d.epoch > view.epoch && d.leader != s.me)
            {
                return Action::Rejoin(d.leader.clone());
            }
            return Action::Nothing;
        }
        // A leader that stopped answering, or answers without being primary (it restarted, or
        // lost its majority), is replaced by the smallest member still in the primary component.
        let leader_primary = s.alive.contains(&view.leader)
            && s.digest(&view.leader)
                .map_or(s.just_installed, |d| d.primary);
        if !leader_primary {
            let mut group: Vec<String> = view
                .member_ids()
                .filter(|id| {
                    *id == s.me
                        || (s.alive.contains(*id) && s.digest(id).is_some_and(|d| d.primary))
                })
                .map(str::to_string)
                .collect();
            group.sort();
            // The smallest reachable member takes over; the others wait for its view.
            return if group.first().map(String::as_str) == Some(s.me) {
                Action::TakeOver(group)
            } else {
                Action::Nothing
            };
        }
        return match s.digest(&view.leader) {
            // The leader moved on without this node: catch up through the primary component.
            Some(d) if d.primary && s.trailing => Action::Rejoin(d.leader.clone()),
            _ => Action::Nothing,
        };
    }
    // Not in a primary component: join one if it exists, else try to form one from the
    // reachable members if they hold a quorum of the last primary component.
    if let Some(leader) = s.primary_elsewhere() {
        // Members still following this node (it restarted before they noticed) replace it
        // first; then it rejoins the component they form.
        return if leader == s.me {
            Action::Nothing
        } else {
            Action::Rejoin(leader)
        };
    }
    let mut group: Vec<String> = s
        .digests
        .iter()
        .filter(|(id, _)| s.alive.contains(id))
        .map(|(id, _)| id.clone())
        .chain(std::iter::once(s.me.to_string()))
        .collect();
    group.sort();
    group.dedup();
    let present: BTreeSet<String> = group.iter().cloned().collect();
    if group.first().map(String::as_str) == Some(s.me) && has_quorum(view.member_ids(), &present) {
        return Action::TakeOver(group);
    }
    Action::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cluster::{Member, View};

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn meta(leader: &str, members: &[&str], epoch: u64) -> ClusterMeta {
        ClusterMeta {
            name: "c".into(),
            path: String::new(),
            uuid: String::new(),
            tables: vec![],
            nodes_set: members.iter().map(|s| s.to_string()).collect(),
            seq: 5,
            view: View {
                epoch,
                leader: leader.into(),
                members: members
                    .iter()
                    .map(|id| Member {
                        id: id.to_string(),
                        repl: String::new(),
                    })
                    .collect(),
            },
        }
    }

    fn digest(leader: &str, epoch: u64, primary: bool) -> Digest {
        Digest {
            name: "c".into(),
            epoch,
            leader: leader.into(),
            primary,
            seq: 5,
            repl: String::new(),
        }
    }

    #[test]
    fn quorum_is_a_strict_majority_of_the_last_primary() {
        for (base, present, want) in [
            (vec!["a", "b", "c"], vec!["a", "b"], true),
            (vec!["a", "b", "c"], vec!["a"], false),
            (vec!["a", "b"], vec!["a"], false),
            (vec!["a"], vec!["a"], true),
            (vec!["a", "b", "c", "d"], vec!["a", "b"], false),
            (vec!["a", "b", "c"], vec!["a", "x", "y"], false),
            (vec![], vec!["a"], true),
        ] {
            assert_eq!(
                has_quorum(base.iter().copied(), &set(&present)),
                want,
                "{base:?} {present:?}"
            );
        }
    }

    /// (peer, its leader, epoch, primary) as a heartbeat reports it.
    type Reported = (&'static str, &'static str, u64, bool);

    #[test]
    fn supervisor_decisions() {
        let members = ["a", "b", "c"];
        // (me, leader, status, alive peers, what they report, trailing, expected action)
        #[allow(clippy::type_complexity)]
        let cases: Vec<(&str, &str, Status, &[&str], &[Reported], bool, Action)> = vec![
            // The leader evicts a member that stopped answering.
            (
                "a",
                "a",
                Status::Primary,
                &["b"],
                &[("b", "a", 3, true)],
                false,
                Action::Evict(vec!["c".into()]),
            ),
            // A follower waits while its leader answers.
            (
                "b",
                "a",
                Status::Primary,
                &["a", "c"],
                &[("a", "a", 3, true)],
                false,
                Action::Nothing,
            ),
            // The leader died: the smallest remaining member takes over, the other waits.
            (
                "b",
                "a",
                Status::Primary,
                &["c"],
                &[("c", "a", 3, true)],
                false,
                Action::TakeOver(vec!["b".into(), "c".into()]),
            ),
            (
                "c",
                "a",
                Status::Primary,
                &["b"],
                &[("b", "a", 3, true)],
                false,
                Action::Nothing,
            ),
            // An isolated follower takes over alone (and will fail the quorum check).
            (
                "c",
                "a",
                Status::Primary,
                &[],
                &[],
                false,
                Action::TakeOver(vec!["c".into()]),
            ),
            // The leader moved on without this follower for a while: rejoin.
            (
                "c",
                "a",
                Status::Primary,
                &["a"],
                &[("a", "a", 4, true)],
                true,
                Action::Rejoin("a".into()),
            ),
            // Just behind (the view is on its way): wait.
            (
                "c",
                "a",
                Status::Primary,
                &["a"],
                &[("a", "a", 4, true)],
                false,
                Action::Nothing,
            ),
            // A restarted node finds a primary component.
            (
                "c",
                "a",
                Status::Disconnected,
                &["a", "b"],
                &[("a", "a", 4, true), ("b", "a", 4, true)],
                false,
                Action::Rejoin("a".into()),
            ),
            // The leader restarted before its followers noticed: the smallest follower takes
            // over, the restarted leader waits and rejoins.
            (
                "b",
                "a",
                Status::Primary,
                &["a", "c"],
                &[("a", "a", 3, false), ("c", "a", 3, true)],
                false,
                Action::TakeOver(vec!["b".into(), "c".into()]),
            ),
            (
                "a",
                "a",
                Status::Disconnected,
                &["b", "c"],
                &[("b", "a", 3, true), ("c", "a", 3, true)],
                false,
                Action::Nothing,
            ),
            // Every node restarted: the smallest with a quorum forms the primary component.
            (
                "a",
                "a",
                Status::Disconnected,
                &["b"],
                &[("b", "a", 3, false)],
                false,
                Action::TakeOver(vec!["a".into(), "b".into()]),
            ),
            (
                "a",
                "a",
                Status::Disconnected,
                &[],
                &[],
                false,
                Action::Nothing,
            ),
            // A lone non-primary survivor stays as it is (pc.bootstrap is the way out).
            (
                "a",
                "a",
                Status::NonPrimary,
                &[],
                &[],
                false,
                Action::Nothing,
            ),
            // A partitioned minority that is back in touch with the others.
            (
                "a",
                "a",
                Status::NonPrimary,
                &["b"],
                &[("b", "a", 3, false)],
                false,
                Action::TakeOver(vec!["a".into(), "b".into()]),
            ),
            // A stale leader meets a newer primary: it rejoins.
            (
                "a",
                "a",
                Status::Primary,
                &["b", "c"],
                &[("b", "b", 9, true), ("c", "b", 9, true)],
                false,
                Action::Rejoin("b".into()),
            ),
        ];
        for (i, (me, leader, status, alive, reported, trailing, want)) in
            cases.into_iter().enumerate()
        {
            let m = meta(leader, &members, 3);
            let alive = set(alive);
            let digests: Vec<(String, Digest)> = reported
                .iter()
                .map(|(p, l, e, primary)| (p.to_string(), digest(l, *e, *primary)))
                .collect();
            let s = Situation {
                me,
                meta: &m,
                status,
                state: NodeState::Synced,
                alive: &alive,
                digests: &digests,
                trailing,
                just_installed: false,
            };
            assert_eq!(decide(&s), want, "case {i}");
        }
        // The single member of a one-node cluster restarts and forms the primary alone.
        let single = meta("a", &["a"], 1);
        let none = BTreeSet::new();
        let s = Situation {
            me: "a",
            meta: &single,
            status: Status::Disconnected,
            state: NodeState::Closed,
            alive: &none,
            digests: &[],
            trailing: false,
            just_installed: false,
        };
        assert_eq!(decide(&s), Action::TakeOver(vec!["a".into()]));
    }

    #[test]
    fn a_joiner_waits_for_its_leaders_first_word_about_the_cluster() {
        // b just received the cluster from a, whose last heartbeat predates it.
        let m = meta("a", &["a", "b"], 2);
        let alive = set(&["a"]);
        let situation = |just_installed| Situation {
            me: "b",
            meta: &m,
            status: Status::Primary,
            state: NodeState::Synced,
            alive: &alive,
            digests: &[],
            trailing: false,
            just_installed,
        };
        assert_eq!(decide(&situation(true)), Action::Nothing);
        // Later, a leader that answers without the cluster has lost it.
        assert_eq!(
            decide(&situation(false)),
            Action::TakeOver(vec!["b".into()])
        );
    }
}
