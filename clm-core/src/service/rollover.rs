//! CA rollover as one job: create the successor, cross-sign (roots), publish
//! a trust bundle, switch issuance, reissue every still-valid leaf under the
//! successor, and retire the old CA once nothing valid depends on it.
//!
//! Each stage is its own step with its state in `ca_rollovers`; a run
//! continues at the stage the row names, so a run after a crash (or an
//! error) resumes where the last one stopped. What a stage creates has its
//! id chosen when the rollover starts: a stage interrupted after its write
//! finds its certificate instead of signing a second one. Every stage is
//! audited in `secure_audit_log` in the transaction that records it.
//!
//! Switching issuance sets the old CA's `successor_certificate_id`: a
//! request naming the old CA (an issuance, a renewal, a request waiting for
//! approval, a new intermediate under it) is signed by the successor, and a
//! policy listing the old CA binds the successor (see
//! [`crate::service::policy_check::policy_binds`]); no policy is edited.
//! Reissuing goes through [`Clm::renew_certificate`], so a leaf whose policy
//! requires approval waits in its workflow like any renewal. A retired CA
//! signs no certificates but keeps signing CRLs for what it issued.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, build_certificate, chain_check,
    parse_certificate_der, random_serial,
};
use crate::db::{Conn, Lock, RunLease};
use crate::model::{
    CaRollover, CaRolloverId, Certificate, CertificateId, CertificateKind, CertificateSource,
    RolloverStage, RolloverStatus,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append};
use crate::service::authorities::{
    DEFAULT_CA_VALIDITY_DAYS, MAX_VALIDITY_DAYS, NewCertificateAuthority, ca_key_used,
    creation_options,
};
use crate::service::certificates::{
    CaLineage, CertificateWrite, IssuanceExtras, LoadedIssuer, Ownership, certificate_row_with_id,
};
use crate::service::issuance::{IssuanceOutcome, RenewOptions};
use crate::store::audit::AuditLogKind;
use crate::store::ca_rollovers;
use crate::store::certificates::Certificates;
use crate::store::policies::Policies;
use crate::{Clm, Error, Result, store};

/// Days the cross certificates stay valid when [`RolloverOptions::overlap_days`] is not set.
pub const DEFAULT_OVERLAP_DAYS: u32 = 365;
/// Leaves per reissue batch when none is given.
pub const DEFAULT_BATCH_SIZE: u32 = 100;
/// Most leaves per reissue batch.
pub const MAX_BATCH_SIZE: u32 = 1000;
/// Renewals of one reissue batch in flight at once.
const REISSUE_CONCURRENCY: usize = 16;
/// Predecessors followed when loading a CA's lineage.
const MAX_LINEAGE: usize = 16;

/// How the successor differs from the old CA; every field defaults to the
/// old CA's own value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RolloverOptions {
    /// The successor's key algorithm (default: the old CA's).
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The successor's lifetime in days (default: as long as the old CA's;
    /// an intermediate's default is cut to what its parent has left).
    pub validity_days: Option<u32>,
    /// The successor's subject (default: the old CA's, the usual choice
    /// for a root key update).
    pub subject: Option<DistinguishedName>,
    /// Roots: how many days the cross certificates are valid, i.e. how long
    /// the old and new hierarchies chain into each other (default 365; cut
    /// to what both roots have left).
    pub overlap_days: Option<u32>,
}

/// One stage as the plan sees it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlannedStage {
    /// The stage.
    pub stage: RolloverStage,
    /// False when the stage does nothing for this CA (cross-signing an intermediate).
    pub applies: bool,
    /// What the stage does, in words.
    pub action: String,
    /// Certificates the stage signs, reissues or waits for.
    pub certificates: i64,
}

/// A dry run of a rollover: nothing is written.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RolloverPlan {
    /// The CA rolled over.
    pub ca_certificate_id: CertificateId,
    /// `root_ca` or `intermediate_ca`.
    pub ca_kind: CertificateKind,
    /// The CA that signs the successor (None: a new self-signed root). When
    /// the old CA's parent was itself rolled over, its successor.
    pub successor_issuer_id: Option<CertificateId>,
    /// The successor's subject (RFC 4514).
    pub successor_subject_dn: String,
    /// The successor's key algorithm.
    pub successor_key_algorithm: KeyAlgorithm,
    /// The successor's lifetime in days.
    pub successor_validity_days: u32,
    /// Roots: the cross certificates' lifetime in days.
    pub overlap_days: Option<u32>,
    /// The stages in order.
    pub stages: Vec<PlannedStage>,
    /// Still-valid leaves the reissue stage renews under the successor.
    pub leaves_to_reissue: i64,
    /// Of those, leaves whose policy requires approval (they wait in a workflow).
    pub leaves_requiring_approval: i64,
    /// Leaves whose renewal already waits for approval.
    pub leaves_waiting_approval: i64,
    /// Valid dependants the rollover does not move by itself (subordinate
    /// CAs without a successor of their own, imported certificates): the
    /// old CA is retired only when they are gone.
    pub dependants_blocking_retirement: i64,
    /// A rollover of this CA that is not completed: a run resumes it.
    pub open_rollover: Option<CaRollover>,
    /// Things to know before running (a shortened validity, a permission the
    /// reissue needs).
    pub warnings: Vec<String>,
}

/// Reported after each committed reissue batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RolloverProgress {
    /// The rollover.
    pub rollover_id: CaRolloverId,
    /// Leaves looked at in this pass so far.
    pub leaves_seen: i64,
    /// Leaves reissued under the successor, by any run.
    pub leaves_reissued: i64,
    /// Leaves whose renewal waits for approval (this pass).
    pub leaves_pending_approval: i64,
    /// Leaves that failed to renew (this pass).
    pub leaves_failed: i64,
}

/// How [`Clm::run_ca_rollover`] runs (not stored; each run chooses).
#[derive(Clone, Copy)]
pub struct RolloverRun<'a> {
    /// Leaves per reissue batch, 1..=[`MAX_BATCH_SIZE`].
    pub batch_size: u32,
    /// Stop after this many reissue batches and leave the rollover in
    /// progress (to spread the work, or to simulate an interruption).
    pub max_batches: Option<u32>,
    /// Called after each committed reissue batch.
    pub progress: Option<&'a (dyn Fn(RolloverProgress) + Send + Sync)>,
}

impl Default for RolloverRun<'_> {
    fn default() -> Self {
        RolloverRun {
            batch_size: DEFAULT_BATCH_SIZE,
            max_batches: None,
            progress: None,
        }
    }
}

impl std::fmt::Debug for RolloverRun<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolloverRun")
            .field("batch_size", &self.batch_size)
            .field("max_batches", &self.max_batches)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a run did and where the rollover stands.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RolloverReport {
    /// The rollover's row after this run.
    pub rollover: CaRollover,
    /// Whether this run continued a rollover an earlier run started.
    pub resumed: bool,
    /// The stages this run completed, in order.
    pub stages_completed: Vec<RolloverStage>,
}

/// The CA's successor, retirement and predecessors, as issuance reads them.
pub(crate) async fn lineage(conn: &mut Conn<'_>, ca: CertificateId) -> Result<CaLineage> {
    let (successor, retired_at) = ca_rollovers::ca_state(conn, ca).await?;
    let mut predecessors = Vec::new();
    let mut frontier = vec![ca];
    while let Some(next) = frontier.pop() {
        for found in ca_rollovers::predecessors(conn, next).await? {
            if predecessors.len() >= MAX_LINEAGE {
                break;
            }
            if found != ca && !predecessors.contains(&found) {
                predecessors.push(found);
                frontier.push(found);
            }
        }
    }
    Ok(CaLineage {
        successor,
        retired_at,
        predecessors,
    })
}

#[cfg(feature = "unstable-internals")]
static FAILPOINTS: std::sync::Mutex<Vec<(CertificateId, RolloverStage)>> =
    std::sync::Mutex::new(Vec::new());

/// Test hook: the next run of a rollover of `ca` fails right after
/// `stage` has written what it makes and before the stage is recorded done,
/// as a crash there would. Armed once.
#[cfg(feature = "unstable-internals")]
pub fn inject_failure_after(ca: CertificateId, stage: RolloverStage) {
    let mut armed = FAILPOINTS.lock().unwrap_or_else(|p| p.into_inner());
    armed.push((ca, stage));
}

fn failpoint(ca: CertificateId, stage: RolloverStage) -> Result<()> {
    #[cfg(feature = "unstable-internals")]
    {
        let mut armed = FAILPOINTS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(index) = armed.iter().position(|armed| *armed == (ca, stage)) {
            armed.remove(index);
            return Err(Error::Internal(format!(
                "injected failure after the writes of stage {stage}"
            )));
        }
    }
    let _ = (ca, stage);
    Ok(())
}

/// The stage after `stage` for a CA of `kind`: intermediates skip cross-signing.
fn next_stage(stage: RolloverStage, kind: CertificateKind) -> RolloverStage {
    match stage {
        RolloverStage::CreateSuccessor if kind == CertificateKind::RootCa => {
            RolloverStage::CrossSign
        }
        RolloverStage::CreateSuccessor | RolloverStage::CrossSign => {
            RolloverStage::PublishTrustBundle
        }
        RolloverStage::PublishTrustBundle => RolloverStage::SwitchIssuance,
        RolloverStage::SwitchIssuance => RolloverStage::ReissueLeaves,
        RolloverStage::ReissueLeaves => RolloverStage::RetireOld,
        RolloverStage::RetireOld | RolloverStage::Done => RolloverStage::Done,
    }
}

/// Everything decided before a write: the successor's options and signer.
struct Prepared {
    new: NewCertificateAuthority,
    parent: Option<Arc<LoadedIssuer>>,
    overlap_days: Option<u32>,
    warnings: Vec<String>,
}

/// A write a stage records with its advance, in the same transaction.
enum StageWrite {
    None,
    Switch {
        ca: CertificateId,
        successor: CertificateId,
    },
    Retire {
        ca: CertificateId,
        at: DateTime<Utc>,
    },
}

impl Clm {
    /// The old CA for a rollover by `actor`: a CA clm holds the key of,
    /// visible to the actor (else NotFound), with `authorities:rollover`
    /// where it lives.
    async fn rollover_ca(
        &self,
        actor: &Actor,
        ca_id: CertificateId,
        action: &'static str,
    ) -> Result<Arc<LoadedIssuer>> {
        self.gate(actor, "authorities", action).await?;
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            match store::get::<Certificates>(&mut conn.conn(), ca_id, false).await {
                Err(Error::NotFound { .. }) => {
                    return Err(Error::not_found("certificate authority", ca_id));
                }
                other => other?,
            }
        };
        self.authorize_visible(
            actor,
            Access::new("authorities", action).in_org(row.organization_id),
            "certificate authority",
            ca_id,
        )
        .await?;
        if !row.is_ca {
            return Err(Error::invalid(
                "ca_id",
                format!("{} is not a CA certificate", row.certificate_id),
            ));
        }
        self.load_issuer(ca_id).await
    }

    /// Resolves the successor's options and signer; reads only.
    async fn prepare_rollover(
        &self,
        actor: &Actor,
        old: &LoadedIssuer,
        options: &RolloverOptions,
    ) -> Result<Prepared> {
        let mut warnings = Vec::new();
        let mut new = creation_options(old, self.config().public_base_url.as_deref())?;
        // creation_options copies the old CA's lifetime, so it is set.
        let mut validity_days = new.validity_days.unwrap_or(DEFAULT_CA_VALIDITY_DAYS);
        if let Some(algorithm) = options.key_algorithm {
            new.key_algorithm = algorithm;
        }
        if let Some(subject) = &options.subject {
            if subject.is_empty() {
                return Err(Error::invalid(
                    "options.subject",
                    "a CA certificate needs a non-empty subject",
                ));
            }
            subject.validate()?;
            new.subject = subject.clone();
        }
        if let Some(days) = options.validity_days {
            if days == 0 || days > MAX_VALIDITY_DAYS {
                return Err(Error::invalid(
                    "options.validity_days",
                    format!("must be between 1 and {MAX_VALIDITY_DAYS}, got {days}"),
                ));
            }
            validity_days = days;
        }
        let now = Utc::now();
        let parent = match old.row.certificate_kind {
            CertificateKind::RootCa => None,
            CertificateKind::IntermediateCa => {
                let parent_id = old.row.issuer_certificate_id.ok_or_else(|| {
                    Error::invalid(
                        "ca_id",
                        format!(
                            "intermediate CA {} has no issuer in clm to sign its successor",
                            old.row.certificate_id
                        ),
                    )
                })?;
                let parent = self
                    .signing_issuer(actor, parent_id, old.row.organization_id)
                    .await?;
                // A subordinate CA extends its parent's trust: whoever rolls it
                // over must be allowed to where the parent lives.
                self.authorize(
                    actor,
                    Access::new("authorities", "rollover").in_org(parent.row.organization_id),
                )
                .await?;
                let left = parent.row.not_after.signed_duration_since(now).num_days();
                let left = u32::try_from(left.max(0)).unwrap_or(0);
                if left == 0 {
                    return Err(Error::conflict(format!(
                        "CA {} that would sign the successor expires within a day",
                        parent.row.certificate_id
                    )));
                }
                if validity_days >= left {
                    if options.validity_days.is_some() {
                        return Err(Error::invalid(
                            "options.validity_days",
                            format!(
                                "the successor would outlive CA {} that signs it; at most {} days remain",
                                parent.row.certificate_id,
                                left.saturating_sub(1)
                            ),
                        ));
                    }
                    let cut = left.saturating_sub(1).max(1);
                    warnings.push(format!(
                        "the successor's validity is cut from {} to {cut} days: CA {} that signs it ends {}",
                        validity_days, parent.row.certificate_id, parent.row.not_after
                    ));
                    validity_days = cut;
                }
                Some(parent)
            }
            other => {
                return Err(Error::invalid(
                    "ca_id",
                    format!("a {other} certificate is not rolled over; only CAs are"),
                ));
            }
        };
        let overlap_days = match parent {
            Some(_) => None,
            None => {
                let days = options.overlap_days.unwrap_or(DEFAULT_OVERLAP_DAYS);
                if days == 0 || days > MAX_VALIDITY_DAYS {
                    return Err(Error::invalid(
                        "options.overlap_days",
                        format!("must be between 1 and {MAX_VALIDITY_DAYS}, got {days}"),
                    ));
                }
                Some(days)
            }
        };
        new.validity_days = Some(validity_days);
        Ok(Prepared {
            new,
            parent,
            overlap_days,
            warnings,
        })
    }

    /// What a rollover of the CA `ca_id` would do, with the number of
    /// certificates each stage touches. Needs `authorities:rollover` where
    /// the CA lives. Writes nothing.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn plan_ca_rollover(
        &self,
        actor: &Actor,
        ca_id: CertificateId,
        options: RolloverOptions,
    ) -> Result<RolloverPlan> {
        let old = self.rollover_ca(actor, ca_id, "rollover").await?;
        let open = {
            let mut conn = self.databases().secure.acquire().await?;
            let open = ca_rollovers::get_open(&mut conn.conn(), ca_id).await?;
            if open.is_none() {
                refuse_rolled_over(&mut conn.conn(), &old).await?;
            }
            open
        };
        let options = match &open {
            Some(open) => stored_options(open)?,
            None => options,
        };
        let prepared = self.prepare_rollover(actor, &old, &options).await?;
        let mut warnings = prepared.warnings;
        let now = Utc::now();
        let (by_policy, waiting, (_, others)) = {
            let mut conn = self.databases().secure.acquire().await?;
            (
                ca_rollovers::reissuable_by_policy(&mut conn.conn(), ca_id, now).await?,
                ca_rollovers::waiting_leaves(&mut conn.conn(), ca_id, now).await?,
                ca_rollovers::dependants(&mut conn.conn(), ca_id, now).await?,
            )
        };
        let mut to_reissue = 0i64;
        let mut requiring_approval = 0i64;
        {
            let mut conn = self.databases().core.acquire().await?;
            for (policy_id, count) in by_policy {
                to_reissue = to_reissue.saturating_add(count);
                let Some(policy_id) = policy_id else { continue };
                let policy =
                    store::find_by::<Policies>(&mut conn.conn(), "id", store::id_value(policy_id))
                        .await?;
                match policy {
                    Some(policy) if policy.policy_rules.0.require_approval => {
                        requiring_approval = requiring_approval.saturating_add(count);
                    }
                    Some(_) => {}
                    None => warnings.push(format!(
                        "{count} leaves name policy {policy_id}, which is deleted: their renewal will fail"
                    )),
                }
            }
        }
        if to_reissue > 0 && !actor.can("certificates", "renew") {
            warnings.push(
                "reissuing leaves renews them as you: without certificates:renew every renewal fails"
                    .into(),
            );
        }
        let root = prepared.parent.is_none();
        let stages = vec![
            PlannedStage {
                stage: RolloverStage::CreateSuccessor,
                applies: true,
                action: match &prepared.parent {
                    None => "create a new self-signed root".into(),
                    Some(parent) => format!(
                        "create a new intermediate signed by CA {}",
                        parent.row.certificate_id
                    ),
                },
                certificates: 1,
            },
            PlannedStage {
                stage: RolloverStage::CrossSign,
                applies: root,
                action: if root {
                    "sign the new root's subject and key with the old key, and the old root's with the new key".into()
                } else {
                    "does not apply: the successor chains to the same parent".into()
                },
                certificates: if root { 2 } else { 0 },
            },
            PlannedStage {
                stage: RolloverStage::PublishTrustBundle,
                applies: true,
                action: "store a PEM bundle of the old and new CA certificates".into(),
                certificates: if root { 4 } else { 2 },
            },
            PlannedStage {
                stage: RolloverStage::SwitchIssuance,
                applies: true,
                action: "requests naming the old CA, and policies binding it, go to the successor"
                    .into(),
                certificates: 0,
            },
            PlannedStage {
                stage: RolloverStage::ReissueLeaves,
                applies: true,
                action: format!(
                    "renew every still-valid leaf under the successor ({requiring_approval} through approval)"
                ),
                certificates: to_reissue,
            },
            PlannedStage {
                stage: RolloverStage::RetireOld,
                applies: true,
                action:
                    "retire the old CA once nothing valid depends on it (it keeps signing CRLs)"
                        .into(),
                certificates: others,
            },
        ];
        if others > 0 {
            warnings.push(format!(
                "{others} valid dependants (subordinate CAs without a successor, imported certificates) keep the old CA from retiring; roll subordinate CAs over too"
            ));
        }
        Ok(RolloverPlan {
            ca_certificate_id: ca_id,
            ca_kind: old.row.certificate_kind,
            successor_issuer_id: prepared.parent.as_ref().map(|p| p.row.id),
            successor_subject_dn: prepared.new.subject.to_rfc4514(),
            successor_key_algorithm: prepared.new.key_algorithm,
            successor_validity_days: prepared
                .new
                .validity_days
                .unwrap_or(DEFAULT_CA_VALIDITY_DAYS),
            overlap_days: prepared.overlap_days,
            stages,
            leaves_to_reissue: to_reissue,
            leaves_requiring_approval: requiring_approval,
            leaves_waiting_approval: waiting,
            dependants_blocking_retirement: others,
            open_rollover: open,
            warnings,
        })
    }

    /// Runs a rollover of the CA `ca_id`: starts one with `options`, or
    /// resumes the open one (its stored options apply) at the stage it
    /// stopped. Returns when it is completed, waits for dependants
    /// (`waiting`: run again once approvals are decided or subordinate CAs
    /// are rolled over), or `max_batches` stopped it. Needs
    /// `authorities:rollover` where the CA lives (and where its parent
    /// lives, for an intermediate); leaves are renewed as the actor.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn run_ca_rollover(
        &self,
        actor: &Actor,
        ca_id: CertificateId,
        options: RolloverOptions,
        run: RolloverRun<'_>,
    ) -> Result<RolloverReport> {
        if run.batch_size == 0 || run.batch_size > MAX_BATCH_SIZE {
            return Err(Error::invalid(
                "batch_size",
                format!(
                    "must be between 1 and {MAX_BATCH_SIZE}, got {}",
                    run.batch_size
                ),
            ));
        }
        let old = self.rollover_ca(actor, ca_id, "rollover").await?;
        // Runs are serialized (rollovers are rare and long): two runs of one
        // rollover would both renew the same leaves.
        let lease = RunLease::try_take(
            &self.databases().core,
            &self.config().database,
            Lock::Rollover,
            "rollover.lock",
        )
        .await?
        .ok_or_else(|| {
            Error::conflict("another CA rollover is running; run this one again when it ends")
        })?;
        let outcome = self.run_leased(actor, &old, options, run).await;
        lease.release().await?;
        outcome
    }

    /// [`Clm::run_ca_rollover`] under the rollover lease.
    async fn run_leased(
        &self,
        actor: &Actor,
        old: &Arc<LoadedIssuer>,
        options: RolloverOptions,
        run: RolloverRun<'_>,
    ) -> Result<RolloverReport> {
        let ca_id = old.row.id;
        let old = Arc::clone(old);
        let open = {
            let mut conn = self.databases().secure.acquire().await?;
            let open = ca_rollovers::get_open(&mut conn.conn(), ca_id).await?;
            if open.is_none() {
                refuse_rolled_over(&mut conn.conn(), &old).await?;
            }
            open
        };
        let resumed = open.is_some();
        let options = match &open {
            Some(open) => stored_options(open)?,
            None => options,
        };
        let prepared = self.prepare_rollover(actor, &old, &options).await?;
        let mut rollover = match open {
            Some(open) => open,
            None => self.start_rollover(actor, &old, &options).await?,
        };
        let mut report = RolloverReport {
            rollover: rollover.clone(),
            resumed,
            stages_completed: Vec::new(),
        };
        if rollover.status == RolloverStatus::Waiting {
            // A new run sweeps the leaves again: approvals decided since, and
            // leaves that failed before, get their turn.
            rollover.stage = RolloverStage::ReissueLeaves;
            rollover.status = RolloverStatus::InProgress;
            rollover.last_leaf_id = None;
            rollover.leaves_seen = 0;
            rollover.leaves_failed = 0;
            rollover.error_message = None;
            self.save_rollover(actor, &rollover, None, StageWrite::None)
                .await?;
        }
        let outcome = self
            .run_stages(actor, &old, &prepared, &mut rollover, run, &mut report)
            .await;
        if let Err(err) = &outcome {
            // Keep why it stopped on the row; the next run resumes there.
            rollover.error_message = Some(err.to_string());
            let _ = self
                .save_rollover(actor, &rollover, None, StageWrite::None)
                .await;
        }
        outcome?;
        report.rollover = rollover;
        Ok(report)
    }

    async fn run_stages(
        &self,
        actor: &Actor,
        old: &Arc<LoadedIssuer>,
        prepared: &Prepared,
        rollover: &mut CaRollover,
        run: RolloverRun<'_>,
        report: &mut RolloverReport,
    ) -> Result<()> {
        let kind = old.row.certificate_kind;
        loop {
            let stage = rollover.stage;
            let (write, details) = match stage {
                RolloverStage::CreateSuccessor => {
                    let successor = self
                        .stage_create_successor(actor, rollover, prepared)
                        .await?;
                    (
                        StageWrite::None,
                        json!({"successor_certificate_id": successor.certificate_id,
                               "key_algorithm": prepared.new.key_algorithm.as_str()}),
                    )
                }
                RolloverStage::CrossSign => {
                    let signed = self
                        .stage_cross_sign(actor, old, rollover, prepared)
                        .await?;
                    (StageWrite::None, json!({"cross_certificates": signed}))
                }
                RolloverStage::PublishTrustBundle => {
                    let bundle = self.trust_bundle(old, rollover).await?;
                    let count = bundle.matches("-----BEGIN CERTIFICATE-----").count();
                    rollover.trust_bundle_pem = Some(bundle);
                    (StageWrite::None, json!({"certificates": count}))
                }
                RolloverStage::SwitchIssuance => (
                    StageWrite::Switch {
                        ca: old.row.id,
                        successor: rollover.successor_certificate_id,
                    },
                    json!({"successor_certificate_id": rollover.successor_certificate_id}),
                ),
                RolloverStage::ReissueLeaves => {
                    if !self.stage_reissue(actor, old, rollover, run).await? {
                        return Ok(());
                    }
                    (
                        StageWrite::None,
                        json!({"leaves_reissued": rollover.leaves_reissued,
                               "leaves_pending_approval": rollover.leaves_pending_approval,
                               "leaves_failed": rollover.leaves_failed}),
                    )
                }
                RolloverStage::RetireOld => {
                    let (leaves, others) = {
                        let mut conn = self.databases().secure.acquire().await?;
                        ca_rollovers::dependants(&mut conn.conn(), old.row.id, Utc::now()).await?
                    };
                    let blockers = leaves.saturating_add(others);
                    rollover.blockers = blockers;
                    if blockers > 0 {
                        rollover.status = RolloverStatus::Waiting;
                        self.save_rollover(
                            actor,
                            rollover,
                            Some(
                                AuditEntry::new("ca_rollover.waiting", "rollover")
                                    .resource("certificate", old.row.id)
                                    .org(old.row.organization_id)
                                    .details(json!({"rollover_id": rollover.id,
                                                    "leaves": leaves, "other_dependants": others})),
                            ),
                            StageWrite::None,
                        )
                        .await?;
                        return Ok(());
                    }
                    let at = crate::store::now();
                    rollover.status = RolloverStatus::Completed;
                    rollover.completed_at = Some(at);
                    (
                        StageWrite::Retire { ca: old.row.id, at },
                        json!({"retired_at": at}),
                    )
                }
                RolloverStage::Done => return Ok(()),
            };
            failpoint(old.row.id, stage)?;
            rollover.stage = next_stage(stage, kind);
            rollover.error_message = None;
            let audit = AuditEntry::new("ca_rollover.stage_completed", "rollover")
                .resource("certificate", old.row.id)
                .org(old.row.organization_id)
                .details(
                    json!({"rollover_id": rollover.id, "stage": stage, "next_stage": rollover.stage,
                                "result": details}),
                );
            self.save_rollover(actor, rollover, Some(audit), write)
                .await?;
            report.stages_completed.push(stage);
        }
    }

    /// Records the rollover's row (and the stage's own write) with its
    /// audit row in one secure transaction; the old CA's cached issuer is
    /// dropped when its state changed.
    async fn save_rollover(
        &self,
        actor: &Actor,
        rollover: &CaRollover,
        audit: Option<AuditEntry>,
        write: StageWrite,
    ) -> Result<()> {
        let mut tx = self.databases().secure.begin().await?;
        ca_rollovers::lock(&mut tx.conn(), rollover.id).await?;
        ca_rollovers::update(&mut tx.conn(), rollover).await?;
        let changed = match write {
            StageWrite::None => None,
            StageWrite::Switch { ca, successor } => {
                ca_rollovers::set_successor(&mut tx.conn(), ca, successor).await?;
                Some((ca, Some(successor)))
            }
            StageWrite::Retire { ca, at } => {
                ca_rollovers::retire(&mut tx.conn(), ca, at).await?;
                Some((ca, None))
            }
        };
        if let Some(entry) = audit {
            append(&mut tx.conn(), AuditLogKind::Secure, actor, entry).await?;
        }
        tx.commit().await?;
        if let Some((ca, successor)) = changed {
            self.issuers().forget(ca);
            if let Some(successor) = successor {
                // Its lineage (the predecessors policies bind through) changed.
                self.issuers().forget(successor);
            }
        }
        Ok(())
    }

    /// Inserts the rollover's row with the ids of what it will create.
    async fn start_rollover(
        &self,
        actor: &Actor,
        old: &LoadedIssuer,
        options: &RolloverOptions,
    ) -> Result<CaRollover> {
        let at = crate::store::now();
        let root = old.row.certificate_kind == CertificateKind::RootCa;
        let options_json = serde_json::to_value(options)
            .map_err(|err| Error::Internal(format!("cannot store rollover options: {err}")))?;
        let rollover = CaRollover {
            id: CaRolloverId::new(),
            ca_certificate_id: old.row.id,
            organization_id: old.row.organization_id,
            successor_certificate_id: CertificateId::new(),
            cross_new_by_old_id: root.then(CertificateId::new),
            cross_old_by_new_id: root.then(CertificateId::new),
            options: sqlx::types::Json(options_json),
            status: RolloverStatus::InProgress,
            stage: RolloverStage::CreateSuccessor,
            trust_bundle_pem: None,
            leaves_seen: 0,
            leaves_reissued: 0,
            leaves_pending_approval: 0,
            leaves_failed: 0,
            last_leaf_id: None,
            blockers: 0,
            error_message: None,
            initiated_by_user_id: actor.user_id(),
            started_at: at,
            completed_at: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let mut tx = self.databases().secure.begin().await?;
        ca_rollovers::insert(&mut tx.conn(), &rollover)
            .await
            .map_err(|err| match err {
                Error::AlreadyExists { .. } => Error::conflict(format!(
                    "a rollover of CA {} is already open; run it again to resume it",
                    old.row.certificate_id
                )),
                other => other,
            })?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("ca_rollover.started", "rollover")
                .resource("certificate", old.row.id)
                .org(old.row.organization_id)
                .details(json!({"rollover_id": rollover.id,
                                "ca_certificate_id": old.row.certificate_id,
                                "successor_certificate_id": rollover.successor_certificate_id,
                                "options": rollover.options.0})),
        )
        .await?;
        tx.commit().await?;
        Ok(rollover)
    }

    /// A live certificate row by id, if it was written.
    async fn written(&self, id: CertificateId) -> Result<Option<Certificate>> {
        let mut conn = self.databases().secure.acquire().await?;
        match store::get::<Certificates>(&mut conn.conn(), id, false).await {
            Ok(row) => Ok(Some(row)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    async fn stage_create_successor(
        &self,
        actor: &Actor,
        rollover: &CaRollover,
        prepared: &Prepared,
    ) -> Result<Certificate> {
        if let Some(made) = self.written(rollover.successor_certificate_id).await? {
            return Ok(made);
        }
        let created = self
            .create_ca(
                actor,
                prepared.parent.clone(),
                prepared.new.clone(),
                Some(rollover.successor_certificate_id),
            )
            .await?;
        Ok(created.certificate)
    }

    /// Roots: the new root's subject and key certified by the old key, and
    /// the old root's by the new key (RFC 4210's NewWithOld and OldWithNew),
    /// valid for the overlap, stored as certificates without keys.
    async fn stage_cross_sign(
        &self,
        actor: &Actor,
        old: &Arc<LoadedIssuer>,
        rollover: &CaRollover,
        prepared: &Prepared,
    ) -> Result<Vec<String>> {
        let (Some(new_by_old), Some(old_by_new)) =
            (rollover.cross_new_by_old_id, rollover.cross_old_by_new_id)
        else {
            return Ok(Vec::new());
        };
        let successor = self.load_issuer(rollover.successor_certificate_id).await?;
        let overlap = prepared.overlap_days.unwrap_or(DEFAULT_OVERLAP_DAYS);
        let (not_before, not_after) = crate::service::authorities::validity_window(overlap)?;
        let not_after = not_after
            .min(old.row.not_after)
            .min(successor.row.not_after);
        if not_after <= not_before {
            return Err(Error::conflict(format!(
                "CA {} has no validity left to cross-sign with",
                old.row.certificate_id
            )));
        }
        let mut signed = Vec::new();
        for (id, subject, signer) in [(new_by_old, &successor, old), (old_by_new, old, &successor)]
        {
            if let Some(made) = self.written(id).await? {
                signed.push(made.certificate_id);
                continue;
            }
            let mut template = CertificateTemplate::new(
                DistinguishedName::parse(&subject.row.subject_dn)?,
                CertificateKind::IntermediateCa,
                not_before,
                not_after,
            );
            template.path_len = cross_path_len(
                subject.certificate.path_len,
                signer.certificate.path_len,
                &signer.row.certificate_id,
            )?;
            template.serial = random_serial();
            template.crl_distribution_points = signer.issuance_urls.crl_distribution_points.clone();
            template.ocsp_urls = signer.issuance_urls.ocsp_urls.clone();
            template.ca_issuers_urls = signer.issuance_urls.ca_issuers_urls.clone();
            let spki = subject.certificate.public_key_der.clone();
            let job_signer = Arc::clone(signer);
            let der = self
                .run_cpu(move || {
                    let der = build_certificate(
                        &template,
                        &spki,
                        Issuer::Ca {
                            certificate: &job_signer.certificate,
                            key: &job_signer.key,
                        },
                    )?;
                    // A cross certificate is checked like every other one
                    // clm signs, against the signer's own chain.
                    chain_check::verify_issued(
                        &der,
                        CertificateKind::IntermediateCa,
                        &job_signer.chain_der(),
                        Utc::now(),
                    )?;
                    Ok(der)
                })
                .await?;
            let parsed = parse_certificate_der(&der)?;
            let row = certificate_row_with_id(
                id,
                &parsed,
                CertificateKind::IntermediateCa,
                CertificateSource::Issued,
                Some(signer.row.id),
                &Ownership {
                    organization_id: old.row.organization_id,
                    ..Ownership::default()
                },
            );
            let audit = AuditEntry::new("certificate_authority.cross_signed", "sign")
                .resource("certificate", row.id)
                .org(row.organization_id)
                .details(json!({
                    "certificate_id": row.certificate_id,
                    "subject_certificate_id": subject.row.certificate_id,
                    "signer_certificate_id": signer.row.certificate_id,
                    "rollover_id": rollover.id,
                    "not_after": row.not_after,
                }));
            let write = CertificateWrite {
                issuance: IssuanceExtras {
                    key_use: vec![ca_key_used(&signer.row, &row)],
                    ..IssuanceExtras::default()
                },
                certificate: row,
                private_key: None,
                audit,
            };
            let written = self.write_certificates(actor, vec![write]).await?;
            signed.extend(written.into_iter().map(|c| c.certificate_id));
        }
        Ok(signed)
    }

    /// Old and new CA certificates, then (roots) the two cross certificates,
    /// as one PEM bundle.
    async fn trust_bundle(&self, old: &LoadedIssuer, rollover: &CaRollover) -> Result<String> {
        let mut ids = vec![rollover.successor_certificate_id];
        ids.extend(rollover.cross_new_by_old_id);
        ids.extend(rollover.cross_old_by_new_id);
        let mut bundle = old.row.certificate_pem.trim_end().to_string();
        bundle.push('\n');
        for id in ids {
            let row = self.written(id).await?.ok_or_else(|| {
                Error::Internal(format!("rollover {} lost certificate {id}", rollover.id))
            })?;
            bundle.push_str(row.certificate_pem.trim_end());
            bundle.push('\n');
        }
        Ok(bundle)
    }

    /// Reissues leaves in batches from the cursor; each batch's progress is
    /// committed with an audit row. False when `max_batches` stopped it
    /// before every leaf was seen.
    async fn stage_reissue(
        &self,
        actor: &Actor,
        old: &LoadedIssuer,
        rollover: &mut CaRollover,
        run: RolloverRun<'_>,
    ) -> Result<bool> {
        let mut batches = 0u32;
        loop {
            if run.max_batches.is_some_and(|max| batches >= max) {
                return Ok(false);
            }
            let leaves = {
                let mut conn = self.databases().secure.acquire().await?;
                ca_rollovers::reissuable_leaves(
                    &mut conn.conn(),
                    old.row.id,
                    Utc::now(),
                    rollover.last_leaf_id,
                    run.batch_size,
                )
                .await?
            };
            if leaves.is_empty() {
                let mut conn = self.databases().secure.acquire().await?;
                rollover.leaves_pending_approval =
                    ca_rollovers::waiting_leaves(&mut conn.conn(), old.row.id, Utc::now()).await?;
                return Ok(true);
            }
            let (mut issued, mut pending, mut failed) = (0i64, 0i64, 0i64);
            let mut renew = Vec::with_capacity(leaves.len());
            for (leaf, waiting, holds_key) in leaves {
                rollover.last_leaf_id = Some(leaf);
                rollover.leaves_seen = rollover.leaves_seen.saturating_add(1);
                if waiting {
                    pending = pending.saturating_add(1);
                } else {
                    renew.push((leaf, holds_key));
                }
            }
            // Renewals of a batch run side by side, so their writes share the
            // certificate writer's group commits; the batch is recorded once
            // all of them have answered.
            let outcomes: Vec<(CertificateId, Result<IssuanceOutcome>)> =
                futures::stream::iter(renew.into_iter().map(|(leaf, holds_key)| async move {
                    // A leaf clm holds no key for (issued from a CSR) keeps
                    // its public key: its holder has the private one.
                    let options = RenewOptions {
                        reuse_key: !holds_key,
                        validity_days: None,
                    };
                    (leaf, self.renew_certificate(actor, leaf, options).await)
                }))
                .buffered(REISSUE_CONCURRENCY)
                .collect()
                .await;
            for (leaf, outcome) in outcomes {
                match outcome {
                    Ok(IssuanceOutcome::Issued { .. }) => issued = issued.saturating_add(1),
                    Ok(IssuanceOutcome::Pending { .. }) => pending = pending.saturating_add(1),
                    Err(err) => {
                        failed = failed.saturating_add(1);
                        rollover.error_message = Some(format!("leaf {leaf}: {err}"));
                    }
                }
            }
            rollover.leaves_reissued = rollover.leaves_reissued.saturating_add(issued);
            rollover.leaves_pending_approval =
                rollover.leaves_pending_approval.saturating_add(pending);
            rollover.leaves_failed = rollover.leaves_failed.saturating_add(failed);
            let audit = AuditEntry::new("ca_rollover.batch", "rollover")
                .resource("certificate", old.row.id)
                .org(old.row.organization_id)
                .details(json!({"rollover_id": rollover.id, "reissued": issued,
                                "pending_approval": pending, "failed": failed,
                                "last_leaf_id": rollover.last_leaf_id}));
            self.save_rollover(actor, rollover, Some(audit), StageWrite::None)
                .await?;
            tracing::info!(
                reissued = issued,
                pending_approval = pending,
                failed,
                "rollover batch committed"
            );
            if let Some(progress) = run.progress {
                progress(RolloverProgress {
                    rollover_id: rollover.id,
                    leaves_seen: rollover.leaves_seen,
                    leaves_reissued: rollover.leaves_reissued,
                    leaves_pending_approval: rollover.leaves_pending_approval,
                    leaves_failed: rollover.leaves_failed,
                });
            }
            batches = batches.saturating_add(1);
        }
    }

    /// The newest rollover of the CA `ca_id` (open or completed): its stage,
    /// progress and trust bundle. Needs `authorities:read` where the CA lives.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn ca_rollover_status(
        &self,
        actor: &Actor,
        ca_id: CertificateId,
    ) -> Result<CaRollover> {
        self.gate(actor, "authorities", "read").await?;
        let row = {
            let mut conn = self.databases().secure.acquire().await?;
            match store::get::<Certificates>(&mut conn.conn(), ca_id, false).await {
                Err(Error::NotFound { .. }) => {
                    return Err(Error::not_found("certificate authority", ca_id));
                }
                other => other?,
            }
        };
        self.authorize_visible(
            actor,
            Access::new("authorities", "read").in_org(row.organization_id),
            "certificate authority",
            ca_id,
        )
        .await?;
        let mut conn = self.databases().secure.acquire().await?;
        ca_rollovers::latest(&mut conn.conn(), ca_id)
            .await?
            .ok_or_else(|| Error::not_found("CA rollover", format!("of CA {}", row.certificate_id)))
    }
}

/// The options a rollover started with.
fn stored_options(rollover: &CaRollover) -> Result<RolloverOptions> {
    serde_json::from_value(rollover.options.0.clone()).map_err(|err| {
        Error::Internal(format!(
            "rollover {} has unreadable options: {err}",
            rollover.id
        ))
    })
}

/// A CA already switched to a successor (or retired) is not rolled over
/// again. Read from the database, not the issuer cache: a run that just
/// ended may have switched it.
async fn refuse_rolled_over(conn: &mut Conn<'_>, old: &LoadedIssuer) -> Result<()> {
    let (successor, retired_at) = ca_rollovers::ca_state(conn, old.row.id).await?;
    if let Some(successor) = successor {
        return Err(Error::conflict(format!(
            "CA {} was already rolled over to {successor}; roll the successor over instead",
            old.row.certificate_id
        )));
    }
    if retired_at.is_some() {
        return Err(Error::conflict(format!(
            "CA {} is retired",
            old.row.certificate_id
        )));
    }
    Ok(())
}

/// The pathLenConstraint of a cross certificate of a root with `subject`'s
/// constraint, signed by a root with `signer`'s: a CA below the signer must
/// stay under its constraint (RFC 5280 §4.2.1.9), so the subject's is cut
/// to what the signer leaves; a signer allowing no CA below it cannot
/// cross-sign at all.
fn cross_path_len(subject: Option<u8>, signer: Option<u8>, signer_id: &str) -> Result<Option<u8>> {
    match signer {
        None => Ok(subject),
        Some(0) => Err(Error::conflict(format!(
            "CA {signer_id} has pathLenConstraint 0: no CA certificate, a cross certificate included, may be signed below it"
        ))),
        Some(limit) => {
            let room = limit.saturating_sub(1);
            Ok(Some(subject.map_or(room, |own| own.min(room))))
        }
    }
}

#[cfg(test)]
mod cross_path_len_tests {
    use super::cross_path_len;

    #[test]
    fn a_cross_certificate_stays_under_its_signers_path_length() {
        // Unconstrained signer: the subject's own constraint stands.
        assert_eq!(cross_path_len(Some(3), None, "old").ok(), Some(Some(3)));
        assert_eq!(cross_path_len(None, None, "old").ok(), Some(None));
        // A signer allowing one level leaves none below the cross certificate.
        assert_eq!(cross_path_len(Some(1), Some(1), "old").ok(), Some(Some(0)));
        assert_eq!(cross_path_len(None, Some(2), "old").ok(), Some(Some(1)));
        assert_eq!(cross_path_len(Some(0), Some(5), "old").ok(), Some(Some(0)));
        // A signer allowing no CA below it cannot cross-sign; the error names it.
        let refused = cross_path_len(Some(1), Some(0), "ROOT-OLD").expect_err("pathLen 0");
        assert_eq!(refused.code(), crate::ErrorCode::Conflict);
        assert!(refused.to_string().contains("ROOT-OLD"), "{refused}");
    }
}
