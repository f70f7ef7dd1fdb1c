//! How the two nodes of a cross-border referral agree on its status.
//!
//! Each side owns its edges of the state machine ([`crate::workflow`]):
//! the requesting node makes the requester's moves (cancel), the performing
//! node the owner's (received, accepted, rejected, in-progress, completed,
//! failed). Each side applies its own moves at once and sends them; a move
//! that arrives from the peer is merged with the local status by
//! [`merge`]. During a partition both sides may move; the rule makes every
//! order of arrival end in the same status on both nodes:
//!
//! - the owner's final statuses (completed, rejected, failed) win: the
//!   consultation happened, or was refused, whatever the requester did;
//! - otherwise a cancellation wins over the owner's progress;
//! - otherwise the owner's latest status stands.
//!
//! On-hold is a local pause and is not shared: a cross-border referral
//! cannot be put on hold.

/// The owner's statuses that end a referral.
pub const OWNER_FINAL: &[&str] = &["completed", "rejected", "failed"];

/// The statuses a performing node sends.
pub const OWNER_MOVES: &[&str] = &[
    "received",
    "accepted",
    "rejected",
    "in-progress",
    "completed",
    "failed",
];

/// What a node does with a status that arrives from its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// Move the local Task to this status.
    Move(&'static str),
    /// The local status already is the agreed one.
    Keep,
}

/// Which side this node is of a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The node of the referring organization (the requester).
    Requesting,
    /// The node of the organization asked to perform it (the owner).
    Performing,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requesting => "requesting",
            Self::Performing => "performing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "requesting" => Some(Self::Requesting),
            "performing" => Some(Self::Performing),
            _ => None,
        }
    }
}

/// Merge the status `remote`, moved to on the peer, into the `local`
/// status of this node, which is `side`. `None` when the peer may not make
/// that move (it is not one of its edges).
pub fn merge(side: Side, local: &str, remote: &str) -> Option<Merged> {
    match side {
        // The peer is the owner.
        Side::Requesting => {
            let remote = OWNER_MOVES.iter().copied().find(|m| *m == remote)?;
            Some(if OWNER_FINAL.contains(&local) || local == remote {
                Merged::Keep
            } else if OWNER_FINAL.contains(&remote) {
                Merged::Move(remote)
            } else if local == "cancelled" {
                Merged::Keep
            } else if rank(remote) < rank(local) {
                // Older news than what is shown (cannot happen in order,
                // kept safe anyway).
                Merged::Keep
            } else {
                Merged::Move(remote)
            })
        }
        // The peer is the requester: its one move is to cancel.
        Side::Performing => {
            if remote != "cancelled" {
                return None;
            }
            Some(if OWNER_FINAL.contains(&local) || local == "cancelled" {
                Merged::Keep
            } else {
                Merged::Move("cancelled")
            })
        }
    }
}

/// Progress along the owner's path.
fn rank(status: &str) -> u8 {
    match status {
        "requested" => 0,
        "received" => 1,
        "accepted" => 2,
        "in-progress" => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{self, Party};

    /// One node's view: its status and what it still has to send.
    #[derive(Debug, Clone)]
    struct Node {
        status: &'static str,
        outbox: Vec<&'static str>,
        inbox: Vec<&'static str>,
    }

    impl Node {
        fn local(&mut self, to: &'static str, party: Party) -> bool {
            if workflow::check(self.status, to, party, None).is_ok() {
                self.status = to;
                self.outbox.push(to);
                true
            } else {
                false
            }
        }

        fn receive(&mut self, side: Side) {
            if self.inbox.is_empty() {
                return;
            }
            let remote = self.inbox.remove(0);
            match merge(side, self.status, remote) {
                Some(Merged::Move(to)) => self.status = to,
                Some(Merged::Keep) => {}
                None => panic!("{side:?} got a move its peer does not own: {remote}"),
            }
        }
    }

    /// Every interleaving of the requester's and the owner's moves made
    /// during a partition, then delivered in order: both nodes end with
    /// one status.
    #[test]
    fn concurrent_moves_on_both_sides_converge_to_one_status() {
        let owner_paths: &[&[&str]] = &[
            &[],
            &["received"],
            &["received", "accepted"],
            &["received", "rejected"],
            &["received", "accepted", "in-progress"],
            &["received", "accepted", "in-progress", "completed"],
            &["received", "accepted", "in-progress", "failed"],
        ];
        for path in owner_paths {
            for agreed_before in 0..=path.len() {
                for cancel in [false, true] {
                    // The first `agreed_before` owner moves reached the
                    // requester before the partition.
                    let mut a = Node {
                        status: "requested",
                        outbox: vec![],
                        inbox: vec![],
                    };
                    let mut b = Node {
                        status: "requested",
                        outbox: vec![],
                        inbox: vec![],
                    };
                    for to in &path[..agreed_before] {
                        assert!(b.local(to, Party::Owner));
                        a.inbox.push(b.outbox.remove(0));
                        a.receive(Side::Requesting);
                    }
                    // The partition: each side moves on its own.
                    if cancel {
                        a.local("cancelled", Party::Requester);
                    }
                    for to in &path[agreed_before..] {
                        b.local(to, Party::Owner);
                    }
                    // The link is back: everything arrives, in order.
                    a.inbox.append(&mut b.outbox);
                    b.inbox.append(&mut a.outbox);
                    while !a.inbox.is_empty() || !b.inbox.is_empty() {
                        a.receive(Side::Requesting);
                        b.receive(Side::Performing);
                    }
                    assert_eq!(
                        a.status, b.status,
                        "owner path {path:?}, {agreed_before} agreed, cancel {cancel}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_final_status_of_the_owner_wins_over_a_cancellation_it_never_saw() {
        assert_eq!(
            merge(Side::Requesting, "cancelled", "completed"),
            Some(Merged::Move("completed"))
        );
        assert_eq!(
            merge(Side::Performing, "completed", "cancelled"),
            Some(Merged::Keep)
        );
        assert_eq!(
            merge(Side::Requesting, "cancelled", "in-progress"),
            Some(Merged::Keep)
        );
        assert_eq!(
            merge(Side::Performing, "in-progress", "cancelled"),
            Some(Merged::Move("cancelled"))
        );
    }

    #[test]
    fn a_peer_cannot_make_the_other_sides_moves() {
        assert_eq!(merge(Side::Requesting, "requested", "cancelled"), None);
        assert_eq!(merge(Side::Performing, "requested", "accepted"), None);
        assert_eq!(merge(Side::Requesting, "requested", "draft"), None);
    }
}
