//! The referral state machine: which Task status may follow which, and
//! which party (the requester or the owner) may make each move.
//!
//! ```text
//! draft ─R→ requested ─O→ received ─O→ accepted ─O→ in-progress ─O→ completed
//!              │                  └─O→ rejected*     │    │
//!              └─R→ cancelled*   accepted ─R→ cancelled*   └─O→ failed*
//! requested | received | accepted | in-progress ─R/O→ on-hold ─R/O→ (the status before)
//! ```
//! R = requester, O = owner; * needs a reason. Completing needs outputs.

/// Who acts in a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    Requester,
    Owner,
}

impl Party {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requester => "requester",
            Self::Owner => "owner",
        }
    }
}

/// The statuses a referral Task can be in (a subset of FHIR's TaskStatus).
pub const STATUSES: &[&str] = &[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "in-progress",
    "on-hold",
    "completed",
    "cancelled",
    "failed",
];

/// Statuses a referral can be put on hold from.
const ACTIVE: &[&str] = &["requested", "received", "accepted", "in-progress"];

/// One move of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Edge {
    from: &'static str,
    to: &'static str,
    by: &'static [Party],
}

const R: &[Party] = &[Party::Requester];
const O: &[Party] = &[Party::Owner];

const EDGES: &[Edge] = &[
    Edge {
        from: "draft",
        to: "requested",
        by: R,
    },
    Edge {
        from: "requested",
        to: "received",
        by: O,
    },
    Edge {
        from: "received",
        to: "accepted",
        by: O,
    },
    Edge {
        from: "received",
        to: "rejected",
        by: O,
    },
    Edge {
        from: "accepted",
        to: "in-progress",
        by: O,
    },
    Edge {
        from: "in-progress",
        to: "completed",
        by: O,
    },
    Edge {
        from: "requested",
        to: "cancelled",
        by: R,
    },
    Edge {
        from: "accepted",
        to: "cancelled",
        by: R,
    },
    Edge {
        from: "in-progress",
        to: "failed",
        by: O,
    },
];

const BOTH: &[Party] = &[Party::Requester, Party::Owner];

/// Statuses that need a reason (Task.statusReason).
pub fn needs_reason(to: &str) -> bool {
    matches!(to, "rejected" | "cancelled" | "failed")
}

/// Why a move is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The state machine has no such move from `from`; `allowed` lists the
    /// moves there are for this party.
    NotAllowed { allowed: Vec<&'static str> },
    /// The move exists but belongs to the other party.
    WrongParty { needs: &'static [Party] },
}

/// Check that `party` may move a Task from `from` to `to`. `before_hold`
/// is the status a Task on hold had before (it may go back only there).
pub fn check(from: &str, to: &str, party: Party, before_hold: Option<&str>) -> Result<(), Refused> {
    let edges = moves(from, before_hold);
    match edges.iter().find(|(target, _)| *target == to) {
        Some((_, by)) if by.contains(&party) => Ok(()),
        Some((_, by)) => Err(Refused::WrongParty { needs: by }),
        None => Err(Refused::NotAllowed {
            allowed: edges
                .iter()
                .filter(|(_, by)| by.contains(&party))
                .map(|(to, _)| *to)
                .collect(),
        }),
    }
}

/// Every move out of `from`, with who may make it.
fn moves(from: &str, before_hold: Option<&str>) -> Vec<(&'static str, &'static [Party])> {
    let mut out: Vec<(&'static str, &'static [Party])> = EDGES
        .iter()
        .filter(|e| e.from == from)
        .map(|e| (e.to, e.by))
        .collect();
    if ACTIVE.contains(&from) {
        out.push(("on-hold", BOTH));
    }
    if from == "on-hold"
        && let Some(back) = before_hold.and_then(|b| ACTIVE.iter().find(|a| **a == b))
    {
        out.push((back, BOTH));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_open_to_the_right_party_only() {
        let path = [
            ("draft", "requested", Party::Requester),
            ("requested", "received", Party::Owner),
            ("received", "accepted", Party::Owner),
            ("accepted", "in-progress", Party::Owner),
            ("in-progress", "completed", Party::Owner),
        ];
        for (from, to, party) in path {
            assert_eq!(check(from, to, party, None), Ok(()), "{from} -> {to}");
            let other = if party == Party::Owner {
                Party::Requester
            } else {
                Party::Owner
            };
            assert!(
                matches!(
                    check(from, to, other, None),
                    Err(Refused::WrongParty { .. })
                ),
                "{from} -> {to} by {other:?}"
            );
        }
    }

    #[test]
    fn every_move_outside_the_machine_is_refused() {
        let allowed: Vec<(&str, &str)> = vec![
            ("draft", "requested"),
            ("requested", "received"),
            ("received", "accepted"),
            ("received", "rejected"),
            ("accepted", "in-progress"),
            ("in-progress", "completed"),
            ("requested", "cancelled"),
            ("accepted", "cancelled"),
            ("in-progress", "failed"),
            ("requested", "on-hold"),
            ("received", "on-hold"),
            ("accepted", "on-hold"),
            ("in-progress", "on-hold"),
        ];
        for from in STATUSES {
            for to in STATUSES {
                let open = allowed.contains(&(from, to));
                let either = [Party::Requester, Party::Owner]
                    .iter()
                    .any(|p| check(from, to, *p, None).is_ok());
                assert_eq!(either, open, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn a_referral_on_hold_goes_back_only_to_where_it_was() {
        assert_eq!(
            check("on-hold", "accepted", Party::Requester, Some("accepted")),
            Ok(())
        );
        assert!(check("on-hold", "in-progress", Party::Owner, Some("accepted")).is_err());
        assert!(check("on-hold", "completed", Party::Owner, Some("in-progress")).is_err());
        match check("on-hold", "received", Party::Owner, Some("accepted")) {
            Err(Refused::NotAllowed { allowed }) => assert_eq!(allowed, ["accepted"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_rejection_cancellation_and_failure_need_a_reason() {
        let with_reason: Vec<&str> = STATUSES
            .iter()
            .copied()
            .filter(|s| needs_reason(s))
            .collect();
        assert_eq!(with_reason, ["rejected", "cancelled", "failed"]);
    }
}
