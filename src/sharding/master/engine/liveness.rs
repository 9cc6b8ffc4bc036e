//! Whether the shardbuddy process that received a statement is still there
//! to answer it, judged from the nodes' registrations the way the lease is
//! judged: by when this master saw each one change, on its own clock.
//!
//! A process rewrites its node's registration (`instance`, `beat`) every
//! heartbeat, and more often while a statement waits. When the process
//! dies, its client gets searchd's own error instead of shardbuddy's
//! answer, so the statement must not take effect: the master discards a
//! request whose process is gone before it is planned, undoes a CREATE
//! whose process is gone before it is done, and completes a CREATE only
//! once its process was seen alive after the work was done. A process is
//! gone once another process of the same node is seen beating, or once its
//! beat has not changed for the liveness timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::NodeId;
use crate::sharding::records::{OpRequest, Registration};

/// What this master saw of one node's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    instance: String,
    beat: u64,
    /// When this master first saw this instance and beat.
    since: Instant,
    /// Whether this master saw this instance's beat change (a registration
    /// seen only once may be a dead process's last word).
    changed: bool,
}

/// The requester of a statement, as far as the master can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// Seen alive (after the moment asked about).
    Alive,
    /// Not seen alive yet; ask again at the next step.
    Unknown,
    /// Gone: the statement's client has had searchd's own error.
    Gone,
}

#[derive(Debug, Default)]
pub struct Liveness {
    seen: BTreeMap<NodeId, Seen>,
}

impl Liveness {
    /// Takes in the registrations of one snapshot.
    pub fn observe(&mut self, registrations: &BTreeMap<NodeId, Registration>, now: Instant) {
        for (node, reg) in registrations {
            match self.seen.get_mut(node) {
                Some(seen) if seen.instance == reg.instance && seen.beat == reg.beat => {}
                Some(seen) if seen.instance == reg.instance => {
                    seen.beat = reg.beat;
                    seen.since = now;
                    seen.changed = true;
                }
                _ => {
                    self.seen.insert(
                        node.clone(),
                        Seen {
                            instance: reg.instance.clone(),
                            beat: reg.beat,
                            since: now,
                            changed: false,
                        },
                    );
                }
            }
        }
        self.seen.retain(|node, _| registrations.contains_key(node));
    }

    /// Whether `node`'s shardbuddy was seen beating within `timeout`.
    pub fn beating(&self, node: &NodeId, now: Instant, timeout: Duration) -> bool {
        self.seen
            .get(node)
            .is_some_and(|s| now.saturating_duration_since(s.since) < timeout)
    }

    /// The requester of `request`, which this master first saw at
    /// `asked_at`: alive if its process beat within `timeout` (and, with
    /// `after`, changed its beat after that moment). A request without a
    /// process (older versions) counts as alive.
    pub fn requester(
        &self,
        request: &OpRequest,
        asked_at: Instant,
        after: Option<Instant>,
        now: Instant,
        timeout: Duration,
    ) -> Requester {
        let Some(instance) = &request.instance else {
            return Requester::Alive;
        };
        let Some(seen) = self.seen.get(&request.by) else {
            return waited_out(asked_at, now, timeout);
        };
        if seen.instance != *instance {
            // Another process of that node beats: the requester was replaced.
            // (Before its first registration, the node may still show its
            // predecessor's.)
            return if seen.changed {
                Requester::Gone
            } else {
                waited_out(asked_at, now, timeout)
            };
        }
        if now.duration_since(seen.since) >= timeout {
            return Requester::Gone;
        }
        match after {
            Some(after) if !(seen.changed && seen.since > after) => Requester::Unknown,
            _ => Requester::Alive,
        }
    }
}

/// A requester not seen at all is gone once it had `timeout` to show up.
fn waited_out(asked_at: Instant, now: Instant, timeout: Duration) -> Requester {
    if now.duration_since(asked_at) >= timeout {
        Requester::Gone
    } else {
        Requester::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sharding::records::Scope;

    fn reg(instance: &str, beat: u64) -> Registration {
        Registration {
            seen_at: 0,
            version: String::new(),
            instance: instance.into(),
            beat,
        }
    }

    fn request(instance: Option<&str>) -> OpRequest {
        OpRequest {
            id: "r".into(),
            by: NodeId::new("n2"),
            at_ms: 0,
            timeout_ms: 30_000,
            scope: Scope::Local,
            shards: 1,
            rf: 1,
            instance: instance.map(str::to_string),
        }
    }

    /// Each case: the registrations of node n2 at t = 0, 1, 2, … seconds
    /// (`None`: not registered), the request's process, when it was asked
    /// and after which moment the process must have beaten; then the
    /// verdict at the last moment. The liveness timeout is 3 s.
    #[test]
    fn requesters_are_alive_unknown_or_gone() {
        use Requester::*;
        let timeout = Duration::from_secs(3);
        type Regs<'a> = &'a [Option<(&'a str, u64)>];
        type Case<'a> = (
            &'a str,
            Regs<'a>,
            Option<&'a str>,
            u64,
            Option<u64>,
            Requester,
        );
        let cases: [Case; 11] = [
            (
                "a request of an older version",
                &[None],
                None,
                0,
                None,
                Alive,
            ),
            (
                "its process registered",
                &[Some(("p1", 1))],
                Some("p1"),
                0,
                None,
                Alive,
            ),
            (
                "not registered yet",
                &[None, None],
                Some("p1"),
                0,
                None,
                Unknown,
            ),
            (
                "never registered",
                &[None, None, None, None],
                Some("p1"),
                0,
                None,
                Gone,
            ),
            (
                "its beat stopped",
                &[
                    Some(("p1", 1)),
                    Some(("p1", 1)),
                    Some(("p1", 1)),
                    Some(("p1", 1)),
                ],
                Some("p1"),
                3,
                None,
                Gone,
            ),
            (
                "its beat goes on",
                &[
                    Some(("p1", 1)),
                    Some(("p1", 2)),
                    Some(("p1", 3)),
                    Some(("p1", 4)),
                ],
                Some("p1"),
                0,
                None,
                Alive,
            ),
            (
                "a predecessor's registration, before its own",
                &[Some(("p0", 7)), Some(("p0", 7))],
                Some("p1"),
                0,
                None,
                Unknown,
            ),
            (
                "replaced by a process that beats",
                &[Some(("p1", 1)), Some(("p2", 1)), Some(("p2", 2))],
                Some("p1"),
                0,
                None,
                Gone,
            ),
            (
                "no beat since the work was done",
                &[Some(("p1", 1)), Some(("p1", 2)), Some(("p1", 2))],
                Some("p1"),
                0,
                Some(1),
                Unknown,
            ),
            (
                "a beat since the work was done",
                &[Some(("p1", 1)), Some(("p1", 2)), Some(("p1", 3))],
                Some("p1"),
                0,
                Some(1),
                Alive,
            ),
            (
                "a beat seen in the same step as the work done is not enough",
                &[Some(("p1", 1)), Some(("p1", 2))],
                Some("p1"),
                0,
                Some(1),
                Unknown,
            ),
        ];
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for (name, regs, instance, asked, after, want) in cases {
            let mut liveness = Liveness::default();
            for (t, r) in regs.iter().enumerate() {
                let map: BTreeMap<NodeId, Registration> = r
                    .iter()
                    .map(|(i, b)| (NodeId::new("n2"), reg(i, *b)))
                    .collect();
                liveness.observe(&map, at(t as u64));
            }
            let now = at(regs.len() as u64 - 1);
            let got =
                liveness.requester(&request(instance), at(asked), after.map(at), now, timeout);
            assert_eq!(got, want, "{name}");
        }
    }
}
