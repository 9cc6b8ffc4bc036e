//! Master election, sans I/O: the master holds a lease in
//! `system.sharding_state` (`master_lease`) that it renews with every
//! heartbeat. Another node takes over only after it has seen no renewal for
//! the lease timeout, and then with a higher epoch, which fences the old
//! master: its groups stop running and the new master adopts or discards
//! them.
//!
//! Renewals are judged by each observer's own monotonic clock (when did the
//! `beat` counter last change?), never by comparing wall clocks of two hosts.
//! Only the first live node in id order takes over after one timeout; the
//! next one waits another timeout, and so on, so a candidate whose plugin is
//! down does not stall the cluster, and two candidates do not race.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::ids::NodeId;
use crate::sharding::records::Lease;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Master { epoch: u64 },
    Follower { master: Option<NodeId> },
}

/// What the cluster looks like to the election at one tick.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The lease as read now.
    pub lease: Option<&'a Lease>,
    /// Live members of the cluster the metadata lives in.
    pub live: &'a BTreeSet<NodeId>,
    /// The cluster accepts writes (primary component).
    pub writable: bool,
    /// This node made the metadata: with no lease yet, it starts the first
    /// term itself instead of waiting for the first node in id order.
    pub founder: bool,
}

/// What the driver must write after a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseWrite {
    /// Renew our own lease (same epoch, next beat).
    Renew(Lease),
    /// Take the lease over with the next epoch.
    TakeOver(Lease),
}

#[derive(Debug)]
pub struct Election {
    me: NodeId,
    timeout: Duration,
    /// The lease as last seen changing, and when.
    observed: Option<(Lease, Instant)>,
    /// When our own lease was last written successfully.
    last_renewal: Option<Instant>,
}

impl Election {
    pub fn new(me: NodeId, timeout: Duration) -> Self {
        Self {
            me,
            timeout,
            observed: None,
            last_renewal: None,
        }
    }

    /// The driver reports a successful lease write.
    pub fn written(&mut self, now: Instant, lease: &Lease) {
        if lease.node == self.me {
            self.last_renewal = Some(now);
        }
        self.observed = Some((lease.clone(), now));
    }

    /// The master's step while this process holds the lease: renew it, and
    /// lead only while writable and renewed within the lease period.
    fn hold(&self, now: Instant, lease: &Lease, writable: bool) -> (Role, Option<LeaseWrite>) {
        let renew = writable.then(|| {
            LeaseWrite::Renew(Lease {
                beat: lease.beat + 1,
                ..lease.clone()
            })
        });
        // Self-fencing: a master that could not renew for a whole lease
        // period must assume somebody else may take over, and stop acting.
        let fresh = self
            .last_renewal
            .is_some_and(|at| now.duration_since(at) < self.timeout);
        let role = if writable && fresh {
            Role::Master { epoch: lease.epoch }
        } else {
            Role::Follower {
                master: Some(lease.node.clone()),
            }
        };
        (role, renew)
    }

    /// One step: given what the cluster looks like now, decide our role and
    /// what to write.
    pub fn tick(&mut self, now: Instant, view: View<'_>) -> (Role, Option<LeaseWrite>) {
        let View {
            lease: current,
            live,
            writable,
            founder,
        } = view;
        let Some(lease) = current else {
            // Nobody ever led (or the key was lost): the node that made the
            // metadata, else the first live node, starts epoch 1.
            let first = founder || live.iter().next() == Some(&self.me);
            let write = (writable && first).then(|| {
                LeaseWrite::TakeOver(Lease {
                    node: self.me.clone(),
                    epoch: 1,
                    beat: 0,
                })
            });
            return (Role::Follower { master: None }, write);
        };

        if self.observed.as_ref().map(|(l, _)| l) != Some(lease) {
            self.observed = Some((lease.clone(), now));
        }

        if lease.node == self.me && self.last_renewal.is_none() {
            // The lease names this node but not this process: an earlier
            // process of ours held it and stopped (searchd restarted its
            // helper). What it had in memory is gone, so this process takes
            // a term of its own, as another node would, and adopts what the
            // earlier term left.
            let write = writable.then(|| {
                LeaseWrite::TakeOver(Lease {
                    node: self.me.clone(),
                    epoch: lease.epoch + 1,
                    beat: 0,
                })
            });
            return (
                Role::Follower {
                    master: Some(lease.node.clone()),
                },
                write,
            );
        }
        if lease.node == self.me {
            return self.hold(now, lease, writable);
        }

        let follower = Role::Follower {
            master: Some(lease.node.clone()),
        };
        if !writable {
            return (follower, None);
        }
        let silent_for = self
            .observed
            .as_ref()
            .map_or(Duration::ZERO, |(_, at)| now.duration_since(*at));
        let rank = live
            .iter()
            .filter(|n| **n != lease.node)
            .position(|n| *n == self.me);
        let take_over = rank.is_some_and(|rank| {
            let rank = u32::try_from(rank).unwrap_or(u32::MAX);
            silent_for >= self.timeout.saturating_mul(rank.saturating_add(1))
        });
        let write = take_over.then(|| {
            LeaseWrite::TakeOver(Lease {
                node: self.me.clone(),
                epoch: lease.epoch + 1,
                beat: 0,
            })
        });
        (follower, write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    fn live(v: &[&str]) -> BTreeSet<NodeId> {
        v.iter().map(|s| id(s)).collect()
    }

    fn view<'a>(lease: Option<&'a Lease>, live: &'a BTreeSet<NodeId>, writable: bool) -> View<'a> {
        View {
            lease,
            live,
            writable,
            founder: false,
        }
    }

    fn lease(node: &str, epoch: u64, beat: u64) -> Lease {
        Lease {
            node: id(node),
            epoch,
            beat,
        }
    }

    #[test]
    fn master_renews_and_stays_master_while_renewals_succeed() {
        let t0 = Instant::now();
        let mut e = Election::new(id("a"), T);
        let l = lease("a", 2, 7);
        e.written(t0, &l);
        let (role, write) = e.tick(
            t0 + Duration::from_secs(1),
            view(Some(&l), &live(&["a", "b"]), true),
        );
        assert_eq!(role, Role::Master { epoch: 2 });
        assert_eq!(write, Some(LeaseWrite::Renew(lease("a", 2, 8))));
    }

    #[test]
    fn a_restarted_master_process_takes_a_term_of_its_own_and_leads_after_writing_it() {
        let t0 = Instant::now();
        let mut e = Election::new(id("a"), T);
        let l = lease("a", 2, 7);
        let (role, write) = e.tick(t0, view(Some(&l), &live(&["a", "b"]), true));
        assert_eq!(
            role,
            Role::Follower {
                master: Some(id("a"))
            }
        );
        let taken = lease("a", 3, 0);
        assert_eq!(write, Some(LeaseWrite::TakeOver(taken.clone())));
        e.written(t0, &taken);
        let (role, write) = e.tick(
            t0 + Duration::from_secs(1),
            view(Some(&taken), &live(&["a", "b"]), true),
        );
        assert_eq!(role, Role::Master { epoch: 3 });
        assert_eq!(write, Some(LeaseWrite::Renew(lease("a", 3, 1))));
    }

    #[test]
    fn master_fences_itself_when_it_cannot_renew() {
        let t0 = Instant::now();
        let mut e = Election::new(id("a"), T);
        let l = lease("a", 2, 7);
        e.written(t0, &l);
        let (role, _) = e.tick(t0 + T, view(Some(&l), &live(&["a", "b"]), true));
        assert_eq!(
            role,
            Role::Follower {
                master: Some(id("a"))
            }
        );
        let (role, write) = e.tick(
            t0 + Duration::from_secs(1),
            view(Some(&l), &live(&["a"]), false),
        );
        assert_eq!(
            role,
            Role::Follower {
                master: Some(id("a"))
            }
        );
        assert_eq!(write, None);
    }

    #[test]
    fn followers_take_over_in_id_order_after_the_lease_expires() {
        let t0 = Instant::now();
        let members = live(&["a", "b", "c"]);
        let stale = lease("a", 4, 9);
        let mut b = Election::new(id("b"), T);
        let mut c = Election::new(id("c"), T);
        for e in [&mut b, &mut c] {
            let (_, write) = e.tick(t0, view(Some(&stale), &members, true));
            assert_eq!(write, None);
        }
        let just_before = t0 + T - Duration::from_millis(1);
        assert_eq!(
            b.tick(just_before, view(Some(&stale), &members, true)).1,
            None
        );
        assert_eq!(
            b.tick(t0 + T, view(Some(&stale), &members, true)).1,
            Some(LeaseWrite::TakeOver(lease("b", 5, 0)))
        );
        // c is second in line: it waits two timeouts.
        assert_eq!(c.tick(t0 + T, view(Some(&stale), &members, true)).1, None);
        assert_eq!(
            c.tick(t0 + T * 2, view(Some(&stale), &members, true)).1,
            Some(LeaseWrite::TakeOver(lease("c", 5, 0)))
        );
    }

    #[test]
    fn a_renewal_resets_the_followers_clock() {
        let t0 = Instant::now();
        let members = live(&["a", "b"]);
        let mut b = Election::new(id("b"), T);
        b.tick(t0, view(Some(&lease("a", 1, 1)), &members, true));
        let later = t0 + T - Duration::from_millis(10);
        b.tick(later, view(Some(&lease("a", 1, 2)), &members, true));
        assert_eq!(
            b.tick(t0 + T, view(Some(&lease("a", 1, 2)), &members, true))
                .1,
            None
        );
        assert!(b
            .tick(later + T, view(Some(&lease("a", 1, 2)), &members, true))
            .1
            .is_some());
    }

    #[test]
    fn no_takeover_without_quorum_or_outside_the_view() {
        let t0 = Instant::now();
        let mut b = Election::new(id("b"), T);
        let l = lease("a", 1, 1);
        b.tick(t0, view(Some(&l), &live(&["a", "b"]), true));
        assert_eq!(
            b.tick(t0 + T * 3, view(Some(&l), &live(&["a", "b"]), false))
                .1,
            None
        );
        assert_eq!(
            b.tick(t0 + T * 3, view(Some(&l), &live(&["a", "c"]), true))
                .1,
            None
        );
    }

    #[test]
    fn first_live_node_starts_epoch_one_when_no_lease_exists() {
        let t0 = Instant::now();
        let mut a = Election::new(id("a"), T);
        let mut b = Election::new(id("b"), T);
        assert_eq!(
            a.tick(t0, view(None, &live(&["a", "b"]), true)).1,
            Some(LeaseWrite::TakeOver(lease("a", 1, 0)))
        );
        assert_eq!(b.tick(t0, view(None, &live(&["a", "b"]), true)).1, None);
        // The node that made the metadata does not wait for the first one.
        let members = live(&["a", "b"]);
        let founder = View {
            founder: true,
            ..view(None, &members, true)
        };
        assert_eq!(
            b.tick(t0, founder).1,
            Some(LeaseWrite::TakeOver(lease("b", 1, 0)))
        );
    }
}
