//! The review queue: every Patient write is matched against the registry
//! after it commits, and the pairs graded possible or better wait there for
//! a person to decide.
//!
//! The reviewer follows the `patient-changes` stream, which the store
//! appends to inside each Patient write's transaction, and saves how far it
//! got in the same transaction as the pairs it found. So no write is missed
//! and none is reviewed twice to different effect, across crashes and
//! restarts; a pair a person decided is never reopened.

use std::time::Duration;

use corridor_fhir::Issue;
use corridor_proto::identity::v1 as pb;
use corridor_runtime::{ApiError, Shutdown};
use corridor_store::pairs::{Pair, PairStatus, Proposal};
use corridor_store::{Store, StoreError};
use serde_json::Value;

use crate::matcher::Matcher;
use crate::mpi::{Decider, Mpi};
use crate::params::PATIENT_CHANGES;

/// The reviewer's cursor on the stream.
const CURSOR: &str = "identity-review-queue";
/// Stream entries read per step.
const BATCH: i64 = 100;
/// How long the reviewer sleeps when nothing announces a write (the
/// wake-up from another process's write may be missed on SQLite).
const IDLE: Duration = Duration::from_secs(1);
/// Review pairs per page when the request does not say.
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;

/// Follow the Patient writes until `shutdown`, filling the review queue.
pub async fn run(matcher: Matcher, store: Store, shutdown: Shutdown) {
    let mut watch = store.watch();
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    loop {
        let worked = match step(&matcher, &store).await {
            Ok(n) => n,
            // The store closes as the service stops.
            Err(_) if shutdown.is_triggered() => return,
            Err(err) => {
                tracing::warn!(error = %err, "review queue: matching new Patient writes failed; retrying");
                0
            }
        };
        if worked as i64 == BATCH {
            continue;
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = watch.recv() => {}
            _ = tokio::time::sleep(IDLE) => {}
        }
    }
}

/// Review the next batch of Patient writes; how many there were. The
/// pairs of the whole batch and the cursor are written in one transaction,
/// so that a busy registry pays one commit per batch, not per write.
async fn step(matcher: &Matcher, store: &Store) -> Result<usize, StoreError> {
    let after = store.cursor(CURSOR).await?;
    let entries = store.stream_after(PATIENT_CHANGES, after, BATCH).await?;
    let Some(last) = entries.last().map(|e| e.seq) else {
        return Ok(0);
    };
    let mut found = Vec::new();
    for entry in &entries {
        let stored = &entry.stored;
        // Only the newest version of a record is worth reviewing, once.
        if found
            .iter()
            .any(|(id, _): &(String, Vec<Proposal>)| *id == stored.id)
        {
            continue;
        }
        let current = match store.read("Patient", &stored.id).await {
            Ok(current) if !current.deleted => current,
            _ => continue,
        };
        let patient: Value = serde_json::from_str(&current.json).unwrap_or(Value::Null);
        let proposals = proposals(matcher, &patient, &current.id).await?;
        if !proposals.is_empty() {
            tracing::info!(patient = %current.id, found = proposals.len(), "review queue: possible duplicates");
        }
        found.push((current.id, proposals));
    }
    store.propose_pairs(CURSOR, last, "Patient", &found).await?;
    Ok(entries.len())
}

/// The candidates of a Patient that a person should look at: possible or
/// better, not merged into it already and not decided.
async fn proposals(
    matcher: &Matcher,
    patient: &Value,
    id: &str,
) -> Result<Vec<Proposal>, StoreError> {
    let linked: Vec<String> = crate::mpi::all_links(patient);
    let person = corridor_matching::Person::from_patient(patient, matcher.rules());
    let found = matcher.candidates(&person, Some(id)).await?;
    Ok(found
        .into_iter()
        .filter(|c| c.grade >= corridor_matching::Grade::Possible)
        .filter(|c| !c.evidence.comparisons.iter().any(|x| x.field == "decision"))
        .filter(|c| !linked.contains(&c.id))
        .map(|c| Proposal {
            other: c.id.clone(),
            grade: c.grade.code().to_owned(),
            score: c.score,
            evidence: serde_json::to_string(&c.evidence).unwrap_or_default(),
        })
        .collect())
}

fn status_filter(text: &str) -> Result<Option<PairStatus>, ApiError> {
    match text.trim() {
        "" | "pending" => Ok(Some(PairStatus::Pending)),
        "all" => Ok(None),
        other => PairStatus::parse(other).map(Some).ok_or_else(|| {
            ApiError::Invalid(
                Issue::new(
                    "invalid",
                    format!("status must be pending, match, not-match or all, not '{other}'"),
                )
                .at("status"),
            )
        }),
    }
}

fn to_proto(pair: Pair) -> pb::Review {
    pb::Review {
        patient_id: pair.found_by,
        candidate_id: pair.other,
        grade: pair.grade.unwrap_or_default(),
        score: pair.score.unwrap_or_default(),
        evidence: pair.evidence.unwrap_or_default(),
        status: pair.status.as_str().to_owned(),
        decided_by: pair.decided_by.unwrap_or_default(),
        reason: pair.reason.unwrap_or_default(),
        found_at: pair.found_at,
        decided_at: pair.decided_at.unwrap_or_default(),
    }
}

/// ListReviews: a page of the queue, oldest first. The page token is the
/// offset of the next page.
pub async fn list(
    store: &Store,
    request: pb::ListReviewsRequest,
) -> Result<pb::ListReviewsResponse, ApiError> {
    let status = status_filter(&request.status)?;
    let count = match i64::from(request.count) {
        0 => DEFAULT_PAGE,
        n if (1..=MAX_PAGE).contains(&n) => n,
        n => {
            return Err(ApiError::Invalid(
                Issue::new(
                    "invalid",
                    format!("count must be between 1 and {MAX_PAGE}, not {n}"),
                )
                .at("count"),
            ));
        }
    };
    let offset = match request.page_token.trim() {
        "" => 0,
        token => token
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::Invalid(
                    Issue::new("invalid", "page_token is not one this service gave out")
                        .at("page_token"),
                )
            })?,
    };
    let mut pairs = store.pairs("Patient", status, offset, count + 1).await?;
    let more = pairs.len() as i64 > count;
    pairs.truncate(count as usize);
    Ok(pb::ListReviewsResponse {
        next_page_token: if more {
            (offset + count).to_string()
        } else {
            String::new()
        },
        reviews: pairs.into_iter().map(to_proto).collect(),
    })
}

/// DecideReview: a person's decision on a pair in the queue.
pub async fn decide(
    store: &Store,
    mpi: &Mpi,
    request: pb::DecideReviewRequest,
) -> Result<pb::DecideReviewResponse, ApiError> {
    let decider = Decider::new(&request.decided_by, &request.reason)?;
    let (a, b) = (request.patient_id.trim(), request.candidate_id.trim());
    if store.pair("Patient", a, b).await?.is_none() {
        return Err(ApiError::NotFound(
            Issue::new(
                "not-found",
                format!("the review queue has no pair Patient/{a} and Patient/{b}; use Link or Unlink to decide about any two Patients"),
            )
            .at("candidate_id"),
        ));
    }
    match pb::Decision::try_from(request.decision) {
        Ok(pb::Decision::Match) => {
            mpi.link(a, b, &decider).await?;
        }
        Ok(pb::Decision::NotMatch) => {
            mpi.unlink(a, b, &decider).await?;
        }
        _ => {
            return Err(ApiError::Invalid(
                Issue::new(
                    "required",
                    "decision must be DECISION_MATCH or DECISION_NOT_MATCH",
                )
                .at("decision"),
            ));
        }
    }
    let pair = store
        .pair("Patient", a, b)
        .await?
        .ok_or(ApiError::Store(StoreError::Contention))?;
    Ok(pb::DecideReviewResponse {
        review: Some(to_proto(pair)),
    })
}
