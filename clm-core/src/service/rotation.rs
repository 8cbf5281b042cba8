//! Key rotation. A data-key rotation makes a new active data key, then
//! re-seals every private key (and MFA secret) sealed under an older key in
//! batches, each batch its own transaction that also moves the resume cursor
//! in `key_rotation_history`; the old key is retired once nothing uses it. A
//! master-key rotation re-wraps every data key under a new master key.

use serde_json::json;

use crate::crypto::envelope::Sealed;
use crate::db::{Conn, Lock, Tx};
use std::sync::Arc;

use crate::keyring::{self, DetachedKey, MasterKeySource};
use crate::keyring::{mfa_aad, private_key_aad};
use crate::model::{
    EncryptionKey, EncryptionKeyId, KeyRotation, KeyRotationId, KeyStatus, Opaque, PrivateKeyId,
    PrivateKeyRecord, RotationStatus, RotationType, UserId,
};
use crate::service::actor::{Access, Actor};
use crate::service::audit::{AuditEntry, append};
use crate::store::audit::AuditLogKind;
use crate::store::key_rotation_history::{self, KeyRotationFilter};
use crate::store::private_keys::{self, Resealed};
use crate::store::{Page, PageRequest, encryption_keys, now, users};
use crate::{Clm, Error, Result};

/// Private keys per batch when [`RotationOptions::batch_size`] is not set.
pub const DEFAULT_BATCH_SIZE: u32 = 2000;
/// Bounds what one batch holds in memory and one transaction locks.
pub const MAX_BATCH_SIZE: u32 = 5000;
/// Passes over the old keys before giving up on a writer that keeps sealing
/// under an old key (another process whose key ring was not reloaded).
const MAX_SWEEPS: u32 = 3;
const MFA_BATCH: u32 = 500;

/// Reported to [`RotationOptions::progress`] after each committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct RotationProgress {
    /// The rotation (`key_rotation_history.id`).
    pub rotation_id: KeyRotationId,
    /// Private keys the whole rotation re-seals.
    pub total: i64,
    /// Of `total`, those re-sealed so far.
    pub rotated: i64,
}

/// How [`Clm::rotate_data_key`] runs.
#[derive(Clone, Copy)]
pub struct RotationOptions<'a> {
    /// Private keys per batch (one transaction each), 1..=[`MAX_BATCH_SIZE`].
    pub batch_size: u32,
    /// Called after each committed batch.
    pub progress: Option<&'a (dyn Fn(RotationProgress) + Send + Sync)>,
    /// Test and operations knob: stop after this many batches and leave the
    /// rotation in progress (to spread the work over maintenance windows, or
    /// to simulate an interruption). The next call resumes it. None runs to
    /// the end.
    pub max_batches: Option<u32>,
}

impl Default for RotationOptions<'_> {
    fn default() -> Self {
        RotationOptions {
            batch_size: DEFAULT_BATCH_SIZE,
            progress: None,
            max_batches: None,
        }
    }
}

impl std::fmt::Debug for RotationOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationOptions")
            .field("batch_size", &self.batch_size)
            .field("progress", &self.progress.is_some())
            .field("max_batches", &self.max_batches)
            .finish()
    }
}

/// What a rotation call did. `status` is `in_progress` when it stopped early
/// (`max_batches`); call again to resume.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RotationReport {
    /// The rotation (`key_rotation_history.id`).
    pub rotation_id: KeyRotationId,
    /// A data key or a master key rotation.
    pub rotation_type: RotationType,
    /// `completed`, or `in_progress` when it stopped early.
    pub status: RotationStatus,
    /// Whether this call continued a rotation an earlier call started.
    pub resumed: bool,
    /// The data key rotated away from (data key rotations).
    pub old_key_id: Option<EncryptionKeyId>,
    /// The data key now active (data key rotations).
    pub new_key_id: Option<EncryptionKeyId>,
    /// The master key id rotated away from (master key rotations; not secret).
    pub old_master_key_id: Option<String>,
    /// The new master key's id (master key rotations; not secret).
    pub new_master_key_id: Option<String>,
    /// Items of the whole rotation (private keys; data keys for a master key).
    pub total_items: i64,
    /// Of `total_items`, those done so far, by any call.
    pub rotated_items: i64,
    /// Of `rotated_items`, those re-sealed by this call.
    pub rotated_this_call: i64,
    /// Batches committed by this call.
    pub batches: u32,
    /// Users' MFA secrets re-sealed under the new data key by this call.
    pub mfa_secrets_resealed: u64,
    /// Old data keys retired (nothing is sealed under them any more); empty
    /// until the rotation completes.
    pub retired_key_ids: Vec<EncryptionKeyId>,
}

impl RotationReport {
    fn from_row(row: &KeyRotation, resumed: bool) -> Self {
        RotationReport {
            rotation_id: row.id,
            rotation_type: row.rotation_type,
            status: row.status,
            resumed,
            old_key_id: row.old_key_id,
            new_key_id: row.new_key_id,
            old_master_key_id: row.old_master_key_id.clone(),
            new_master_key_id: row.new_master_key_id.clone(),
            total_items: row.total_items,
            rotated_items: row.rotated_items,
            rotated_this_call: 0,
            batches: 0,
            mfa_secrets_resealed: 0,
            retired_key_ids: Vec::new(),
        }
    }
}

/// A data key (without key material) and what is still sealed under it.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct DataKeyStatus {
    /// The data key's row (its wrapped key material is never serialized).
    pub key: EncryptionKey,
    /// Private keys sealed under it, soft-deleted ones included.
    pub private_keys: i64,
    /// Users' MFA secrets sealed under it.
    pub mfa_secrets: i64,
}

/// Serializes rotation starts (data key and master key); see [`Lock`].
async fn lock_rotations(conn: &mut Conn<'_>) -> Result<()> {
    conn.lock_for_transaction(Lock::Rotation, true).await
}

/// The rule that keeps sealed values openable: nothing is written sealed
/// under a retired data key. A transaction writing a sealed value takes this
/// lock shared, then checks its key is not retired (and re-seals if it is);
/// retirement takes it exclusive, counts what is still sealed under the key
/// and changes its status. So a key is retired either before a writer's
/// check (which then sees it) or after its commit (and its count sees the
/// row). The lock lives in the database being written ([`Lock::DataKeys`]).
pub(crate) async fn lock_data_keys(conn: &mut Conn<'_>, exclusive: bool) -> Result<()> {
    conn.lock_for_transaction(Lock::DataKeys, exclusive).await
}

/// The distinct data keys `keys` are sealed under.
pub(crate) fn data_key_ids(keys: &[PrivateKeyRecord]) -> Vec<EncryptionKeyId> {
    let mut ids: Vec<EncryptionKeyId> = keys.iter().map(|k| k.encryption_key_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

fn aad_refs(parts: &[String; 3]) -> [&str; 3] {
    [&parts[0], &parts[1], &parts[2]]
}

/// A batch of private keys re-sealed in memory, not yet written.
struct ResealedBatch {
    /// The batch's last id: the cursor once it is written.
    last: PrivateKeyId,
    rows: Vec<Resealed>,
}

/// Where the private-key walk stopped.
enum Walk {
    Done,
    Paused,
}

impl Clm {
    /// Rotates the data-encryption key: a new key becomes active (new sealing
    /// uses it at once) and the old one decrypt-only; every private key and
    /// MFA secret sealed under an old key is re-sealed under the new one in
    /// batches; the old key is retired once nothing uses it. A rotation left
    /// in progress (interrupted, or stopped by `max_batches`) is resumed
    /// instead of starting another.
    ///
    /// Other processes sharing the database should reload their key ring
    /// ([`crate::keyring::KeyRing::reload`]) once a rotation starts, so they
    /// stop sealing under the old key before it is retired.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn rotate_data_key(
        &self,
        actor: &Actor,
        options: RotationOptions<'_>,
    ) -> Result<RotationReport> {
        self.authorize(actor, Access::new("keys", "rotate")).await?;
        if !(1..=MAX_BATCH_SIZE).contains(&options.batch_size) {
            return Err(Error::invalid(
                "batch_size",
                format!("must be 1..={MAX_BATCH_SIZE}, got {}", options.batch_size),
            ));
        }
        let (mut rotation, resumed) = self.start_or_resume_data_rotation(actor).await?;
        failpoint!("rotation.data_key_started")?;
        self.keyring().reload(&self.databases().secure).await?;
        let new_key = rotation.new_key_id.ok_or_else(|| {
            Error::Internal(format!("data-key rotation {} has no new key", rotation.id))
        })?;
        let mut report = RotationReport::from_row(&rotation, resumed);
        let walked = self
            .reseal_private_keys(actor, &mut rotation, new_key, &options, &mut report)
            .await;
        let walked = match walked {
            Ok(walked) => walked,
            Err(err) => {
                self.record_rotation_error(&mut rotation, &err).await;
                return Err(err);
            }
        };
        report.total_items = rotation.total_items;
        report.rotated_items = rotation.rotated_items;
        if let Walk::Paused = walked {
            return Ok(report);
        }
        report.mfa_secrets_resealed = self.reseal_mfa_secrets(actor, &rotation, new_key).await?;
        let mut retired = None;
        for _ in 0..MAX_SWEEPS {
            retired = self.finish_data_rotation(actor, &rotation, new_key).await?;
            if retired.is_some() {
                break;
            }
            let resealed = self.reseal_mfa_secrets(actor, &rotation, new_key).await?;
            report.mfa_secrets_resealed = report.mfa_secrets_resealed.saturating_add(resealed);
        }
        report.retired_key_ids = retired.ok_or_else(|| {
            Error::conflict(format!(
                "MFA secrets keep being sealed under an old data key: reload the key ring of \
                 every process using this database, then call rotate_data_key again \
                 (rotation {} resumes)",
                rotation.id
            ))
        })?;
        report.status = RotationStatus::Completed;
        self.keyring().reload(&self.databases().secure).await?;
        if let Some(user) = actor.user_id() {
            let mut tx = self.databases().core.begin().await?;
            crate::service::notifications::notify(
                &mut tx.conn(),
                crate::service::notifications::Notice::new(
                    user,
                    crate::model::NotificationType::KeyRotationCompleted,
                    "Key rotation finished",
                    format!(
                        "Data-key rotation {} re-sealed {} private keys",
                        rotation.id, report.rotated_items
                    ),
                )
                .about("key_rotation", rotation.id)
                .once(format!("key_rotation_completed:{}", rotation.id)),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(report)
    }

    /// The running data-key rotation, or a new one: the new key becomes
    /// active and the old one decrypt-only in the same transaction.
    async fn start_or_resume_data_rotation(&self, actor: &Actor) -> Result<(KeyRotation, bool)> {
        let mut tx = self.databases().secure.begin().await?;
        lock_rotations(&mut tx.conn()).await?;
        if let Some(mut running) =
            key_rotation_history::get_running(&mut tx.conn(), RotationType::DataKey).await?
        {
            running.error_message = None;
            tx.commit().await?;
            return Ok((running, true));
        }
        let old = encryption_keys::get_active(&mut tx.conn())
            .await?
            .ok_or_else(|| Error::Configuration("no active data-encryption key".into()))?;
        // A master-key rotation may have committed the rows under its new
        // key a moment before this handle switched to it.
        let provider = self.keyring().provider_for(&old.master_key_id)?;
        if old.master_key_id != provider.master_key_id() {
            return Err(Error::conflict(format!(
                "the active data key {} is wrapped by master key {}, not this handle's {}; \
                 the master key was rotated elsewhere: reopen with it",
                old.key_id,
                old.master_key_id,
                provider.master_key_id()
            )));
        }
        let version = encryption_keys::max_version(&mut tx.conn())
            .await?
            .checked_add(1)
            .ok_or_else(|| Error::conflict("data key versions are exhausted"))?;
        let (new, _data_key) =
            keyring::new_data_key(provider.as_ref(), version, KeyStatus::Active)?;
        let at = now();
        // Demote first: at most one active key (a partial unique index).
        encryption_keys::set_status(&mut tx.conn(), old.id, KeyStatus::DecryptOnly, at).await?;
        encryption_keys::insert(&mut tx.conn(), &new).await?;
        let mut total: i64 = 0;
        for key in keys_to_drain(&mut tx).await? {
            let sealed = private_keys::count_sealed_by(&mut tx.conn(), key.id).await?;
            total = total.saturating_add(sealed);
        }
        let rotation = KeyRotation {
            id: KeyRotationId::new(),
            rotation_type: RotationType::DataKey,
            old_key_id: Some(old.id),
            new_key_id: Some(new.id),
            old_master_key_id: None,
            new_master_key_id: None,
            status: RotationStatus::InProgress,
            total_items: total,
            rotated_items: 0,
            last_item_id: None,
            error_message: None,
            initiated_by_user_id: actor.user_id(),
            started_at: at,
            completed_at: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        key_rotation_history::insert(&mut tx.conn(), &rotation).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("encryption_key.rotation_started", "rotate")
                .resource("encryption_key", new.id)
                .details(json!({
                    "rotation_id": rotation.id,
                    "old_key_id": old.key_id,
                    "new_key_id": new.key_id,
                    "new_key_version": new.key_version,
                    "total_items": total,
                })),
        )
        .await?;
        tx.commit().await?;
        Ok((rotation, false))
    }

    /// Walks the private keys of every decrypt-only key, batch by batch,
    /// until none is left (or `max_batches` is reached).
    async fn reseal_private_keys(
        &self,
        actor: &Actor,
        rotation: &mut KeyRotation,
        new_key: EncryptionKeyId,
        options: &RotationOptions<'_>,
        report: &mut RotationReport,
    ) -> Result<Walk> {
        let old_keys = {
            let mut tx = self.databases().secure.begin().await?;
            let keys = keys_to_drain(&mut tx).await?;
            tx.commit().await?;
            keys
        };
        for sweep in 0..MAX_SWEEPS {
            for old in &old_keys {
                let detached = self.detach_if_holding(old).await?;
                // The cursor belongs to the rotation's own old key; a later
                // sweep restarts from the beginning to catch late writers.
                let after = if sweep == 0 && rotation.old_key_id == Some(old.id) {
                    rotation.last_item_id
                } else {
                    None
                };
                // While one batch is written, the next is read and re-sealed
                // on another connection: the database's work and ours overlap.
                let mut next = self
                    .prepare_reseal_batch(
                        old.id,
                        detached.clone(),
                        new_key,
                        after,
                        options.batch_size,
                    )
                    .await?;
                while let Some(batch) = next.take() {
                    if options.max_batches.is_some_and(|max| report.batches >= max) {
                        return Ok(Walk::Paused);
                    }
                    let last = batch.last;
                    let prefetch = options
                        .max_batches
                        .is_none_or(|max| report.batches.saturating_add(1) < max);
                    let (written, following) = tokio::join!(
                        self.write_reseal_batch(actor, rotation, old.id, new_key, batch),
                        async {
                            if prefetch {
                                self.prepare_reseal_batch(
                                    old.id,
                                    detached.clone(),
                                    new_key,
                                    Some(last),
                                    options.batch_size,
                                )
                                .await
                            } else {
                                Ok(None)
                            }
                        }
                    );
                    let changed = written?;
                    next = following?;
                    // Neither half is reading now: see `Pool::bound_wal`.
                    self.databases().secure.bound_wal().await;
                    report.batches = report.batches.saturating_add(1);
                    report.rotated_this_call = report.rotated_this_call.saturating_add(changed);
                    tracing::info!(
                        rotation_id = %rotation.id,
                        sweep,
                        batch = report.batches,
                        resealed = changed,
                        rotated = rotation.rotated_items,
                        total = rotation.total_items,
                        "data key rotation: batch committed"
                    );
                    if let Some(progress) = options.progress {
                        progress(RotationProgress {
                            rotation_id: rotation.id,
                            total: rotation.total_items,
                            rotated: rotation.rotated_items,
                        });
                    }
                    // The last allowed batch: nothing was read after it.
                    if !prefetch {
                        return Ok(Walk::Paused);
                    }
                }
            }
            let mut remaining: i64 = 0;
            {
                let mut conn = self.databases().secure.acquire().await?;
                for old in &old_keys {
                    let sealed = private_keys::count_sealed_by(&mut conn.conn(), old.id).await?;
                    remaining = remaining.saturating_add(sealed);
                }
            }
            // A few late arrivals (writers whose ring predates the rotation)
            // are re-sealed by the verification pass, under the lock.
            if remaining <= i64::from(MAX_BATCH_SIZE) {
                return Ok(Walk::Done);
            }
            rotation.total_items = rotation
                .total_items
                .max(rotation.rotated_items.saturating_add(remaining));
        }
        Err(Error::conflict(format!(
            "after {MAX_SWEEPS} passes private keys are still being sealed under an old data key: \
             reload the key ring of every process using this database, then call rotate_data_key \
             again (rotation {} resumes)",
            rotation.id
        )))
    }

    /// Reads the next `batch_size` keys sealed by `old_key` after `after`
    /// and re-seals them under `new_key` (off the executor). None when the
    /// key has nothing left after `after`. Nothing is written: a row changed
    /// before [`Self::write_reseal_batch`] is left alone by its guard.
    async fn prepare_reseal_batch(
        &self,
        old_key: EncryptionKeyId,
        detached: Option<Arc<DetachedKey>>,
        new_key: EncryptionKeyId,
        after: Option<PrivateKeyId>,
        batch_size: u32,
    ) -> Result<Option<ResealedBatch>> {
        let batch = {
            let mut conn = self.databases().secure.acquire().await?;
            private_keys::batch_sealed_by(&mut conn.conn(), old_key, after, batch_size).await?
        };
        let Some(last) = batch.last().map(|k| k.id) else {
            return Ok(None);
        };
        let clm = self.clone();
        let rows = self
            .run_cpu(move || clm.reseal_records(&batch, new_key, detached.as_deref()))
            .await?;
        Ok(Some(ResealedBatch { last, rows }))
    }

    /// Writes one re-sealed batch in one transaction: the rows still sealed
    /// by `old_key`, the new key's count, the cursor, the audit row. Returns
    /// how many rows changed.
    async fn write_reseal_batch(
        &self,
        actor: &Actor,
        rotation: &mut KeyRotation,
        old_key: EncryptionKeyId,
        new_key: EncryptionKeyId,
        batch: ResealedBatch,
    ) -> Result<i64> {
        let ResealedBatch { last, rows } = batch;
        let mut tx = self.databases().secure.begin().await?;
        let changed = private_keys::reseal_many(&mut tx.conn(), old_key, &rows).await?;
        let changed = i64::try_from(changed).unwrap_or(i64::MAX);
        encryption_keys::increment_encryption_count(&mut tx.conn(), new_key, changed).await?;
        let mut updated = rotation.clone();
        updated.rotated_items = updated.rotated_items.saturating_add(changed);
        updated.total_items = updated.total_items.max(updated.rotated_items);
        if rotation.old_key_id == Some(old_key) {
            updated.last_item_id = Some(last);
        }
        key_rotation_history::update(&mut tx.conn(), &updated).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("private_key.resealed", "rotate")
                .resource("key_rotation", rotation.id)
                .details(json!({
                    "from_encryption_key_id": old_key,
                    "to_encryption_key_id": new_key,
                    "count": changed,
                    "last_private_key_id": last,
                })),
        )
        .await?;
        failpoint!("rotation.batch_written")?;
        tx.commit().await?;
        failpoint!("rotation.batch_committed")?;
        *rotation = updated;
        Ok(changed)
    }

    /// Opens each key under its old data key and seals it under `new_key`
    /// with the same row binding. CPU only; runs off the executor.
    fn reseal_records(
        &self,
        batch: &[PrivateKeyRecord],
        new_key: EncryptionKeyId,
        detached: Option<&DetachedKey>,
    ) -> Result<Vec<Resealed>> {
        batch
            .iter()
            .map(|record| {
                let aad = private_key_aad(record.certificate_id);
                let sealed = Sealed {
                    nonce: record.nonce.0.clone(),
                    ciphertext: record.encrypted_key_material.0.clone(),
                };
                let resealed = self
                    .reseal_one(
                        record.encryption_key_id,
                        detached,
                        new_key,
                        &sealed,
                        &aad_refs(&aad),
                    )
                    .map_err(|err| {
                        Error::crypto(format!(
                            "private key {} (certificate {}) cannot be re-sealed: {err}",
                            record.id, record.certificate_id
                        ))
                    })?;
                Ok(Resealed {
                    id: record.id,
                    encryption_key_id: new_key,
                    encrypted_key_material: Opaque(resealed.ciphertext),
                    nonce: Opaque(resealed.nonce),
                })
            })
            .collect()
    }

    /// Re-seals MFA secrets (core database) still under a decrypt-only key.
    /// They are few; each batch is one core transaction with its audit row.
    async fn reseal_mfa_secrets(
        &self,
        actor: &Actor,
        rotation: &KeyRotation,
        new_key: EncryptionKeyId,
    ) -> Result<u64> {
        let old_keys = {
            let mut tx = self.databases().secure.begin().await?;
            let keys = keys_to_drain(&mut tx).await?;
            tx.commit().await?;
            keys
        };
        let mut total = 0u64;
        for old in &old_keys {
            let detached = if old.key_status == KeyStatus::Retired {
                let mut core = self.databases().core.acquire().await?;
                if users::count_mfa_sealed_by(&mut core.conn(), old.id).await? == 0 {
                    continue;
                }
                Some(self.keyring().detach(old)?)
            } else {
                None
            };
            let mut after: Option<UserId> = None;
            loop {
                let mut tx = self.databases().core.begin().await?;
                let batch = users::mfa_sealed_by(&mut tx.conn(), old.id, after, MFA_BATCH).await?;
                let Some(last) = batch.last().map(|u| u.id) else {
                    break;
                };
                after = Some(last);
                let mut changed = 0u64;
                for user in &batch {
                    let (Some(secret), Some(nonce)) = (&user.mfa_secret, &user.mfa_secret_nonce)
                    else {
                        continue;
                    };
                    let aad = mfa_aad(user.id);
                    let sealed = Sealed {
                        nonce: nonce.0.clone(),
                        ciphertext: secret.0.clone(),
                    };
                    let resealed = self
                        .reseal_one(old.id, detached.as_ref(), new_key, &sealed, &aad_refs(&aad))
                        .map_err(|err| {
                            Error::crypto(format!(
                                "MFA secret of user {} cannot be re-sealed: {err}",
                                user.id
                            ))
                        })?;
                    if users::reseal_mfa_secret(
                        &mut tx.conn(),
                        user.id,
                        old.id,
                        new_key,
                        &Opaque(resealed.ciphertext),
                        &Opaque(resealed.nonce),
                    )
                    .await?
                    {
                        changed = changed.saturating_add(1);
                    }
                }
                append(
                    &mut tx.conn(),
                    AuditLogKind::Core,
                    actor,
                    AuditEntry::new("user.mfa_secret_resealed", "rotate")
                        .resource("key_rotation", rotation.id)
                        .details(json!({
                            "from_encryption_key_id": old.id,
                            "to_encryption_key_id": new_key,
                            "count": changed,
                        })),
                )
                .await?;
                failpoint!("rotation.mfa_batch_written")?;
                tx.commit().await?;
                total = total.saturating_add(changed);
            }
        }
        Ok(total)
    }

    /// The verification pass: under the data-key lock (exclusive, in core and
    /// secure), re-seals the few private keys written under an old key since
    /// the walk (writers whose ring predates the rotation), makes sure no MFA
    /// secret is under one, retires every decrypt-only key and completes the
    /// rotation. None when MFA secrets turned up (the caller re-seals them and
    /// tries again); Conflict when too many private keys did (resumable).
    async fn finish_data_rotation(
        &self,
        actor: &Actor,
        rotation: &KeyRotation,
        new_key: EncryptionKeyId,
    ) -> Result<Option<Vec<EncryptionKeyId>>> {
        // Core first, then secure: a writer holds at most one of them while
        // it waits for the other (secure commits before core begins).
        let mut core = self.databases().core.begin().await?;
        lock_data_keys(&mut core.conn(), true).await?;
        let mut tx = self.databases().secure.begin().await?;
        lock_rotations(&mut tx.conn()).await?;
        lock_data_keys(&mut tx.conn(), true).await?;
        let drain = keys_to_drain(&mut tx).await?;
        for key in &drain {
            if users::count_mfa_sealed_by(&mut core.conn(), key.id).await? > 0 {
                return Ok(None);
            }
        }
        let mut late = 0i64;
        for key in &drain {
            let batch =
                private_keys::batch_sealed_by(&mut tx.conn(), key.id, None, MAX_BATCH_SIZE + 1)
                    .await?;
            if batch.is_empty() {
                continue;
            }
            if batch.len() > MAX_BATCH_SIZE as usize {
                return Err(Error::conflict(format!(
                    "private keys are still being sealed under old data key {}: reload the key \
                     ring of every process using this database, then call rotate_data_key \
                     again (rotation {} resumes)",
                    key.key_id, rotation.id
                )));
            }
            let detached = match key.key_status {
                KeyStatus::Retired => Some(self.keyring().detach(key)?),
                _ => None,
            };
            let resealed = self.reseal_records(&batch, new_key, detached.as_ref())?;
            let changed = private_keys::reseal_many(&mut tx.conn(), key.id, &resealed).await?;
            let changed = i64::try_from(changed).unwrap_or(i64::MAX);
            encryption_keys::increment_encryption_count(&mut tx.conn(), new_key, changed).await?;
            late = late.saturating_add(changed);
        }
        let at = now();
        let mut retired = Vec::new();
        for key in drain
            .iter()
            .filter(|k| k.key_status == KeyStatus::DecryptOnly)
        {
            encryption_keys::set_status(&mut tx.conn(), key.id, KeyStatus::Retired, at).await?;
            retired.push(key.id);
        }
        key_rotation_history::finish(
            &mut tx.conn(),
            rotation.id,
            RotationStatus::Completed,
            None,
            at,
        )
        .await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("encryption_key.rotation_completed", "rotate")
                .resource("key_rotation", rotation.id)
                .details(json!({
                    "retired_key_ids": retired,
                    "rotated_items": rotation.rotated_items,
                    "resealed_at_completion": late,
                })),
        )
        .await?;
        failpoint!("rotation.finish_written")?;
        // Secure (the retirement) commits while core's lock is still held,
        // so an MFA writer waiting for it sees the key retired.
        tx.commit().await?;
        failpoint!("rotation.finish_secure_committed")?;
        core.commit().await?;
        Ok(Some(retired))
    }

    /// Unwraps `key` for repair when it is retired and still seals private
    /// keys; None for a key the ring holds (or one with nothing to repair).
    async fn detach_if_holding(&self, key: &EncryptionKey) -> Result<Option<Arc<DetachedKey>>> {
        if key.key_status != KeyStatus::Retired {
            return Ok(None);
        }
        let mut conn = self.databases().secure.acquire().await?;
        if private_keys::count_sealed_by(&mut conn.conn(), key.id).await? == 0 {
            return Ok(None);
        }
        tracing::warn!(key_id = %key.key_id, "repairing values found sealed under a retired data key");
        Ok(Some(Arc::new(self.keyring().detach(key)?)))
    }

    /// Re-seals one value from `from` (in the ring, or `detached` when it is
    /// retired) to `to`.
    fn reseal_one(
        &self,
        from: EncryptionKeyId,
        detached: Option<&DetachedKey>,
        to: EncryptionKeyId,
        sealed: &Sealed,
        aad: &[&str],
    ) -> Result<Sealed> {
        match detached {
            Some(key) if key.id() == from => self.keyring().reseal_detached(key, to, sealed, aad),
            _ => self.keyring().reseal(from, to, sealed, aad),
        }
    }

    /// Notes why a rotation stopped (best effort; the caller gets the error
    /// either way). The rotation stays in progress so a later call resumes.
    /// Only the message is written: the progress in memory may be behind
    /// the row (a batch whose commit reported an error after it took
    /// effect), and writing it back would undo that batch's count and cursor.
    async fn record_rotation_error(&self, rotation: &mut KeyRotation, err: &Error) {
        rotation.error_message = Some(err.to_string());
        let written = async {
            let mut tx = self.databases().secure.begin().await?;
            key_rotation_history::set_error(&mut tx.conn(), rotation.id, &err.to_string()).await?;
            tx.commit().await
        }
        .await;
        if let Err(write_err) = written {
            tracing::error!(error = %write_err, rotation_id = %rotation.id, "could not record a rotation error");
        }
    }

    /// Re-wraps every data key under the master key `new`, in one
    /// transaction, then switches this handle to it. From then on the
    /// databases open only with the new master key: the host must store it
    /// (and pass it to [`Clm::open`]) before discarding the old one, and
    /// other processes must reopen with it.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn rotate_master_key(
        &self,
        actor: &Actor,
        new: MasterKeySource,
    ) -> Result<RotationReport> {
        self.authorize(actor, Access::new("keys", "rotate")).await?;
        let (new_provider, _created) = new.resolve()?;
        let old_provider = self.keyring().provider()?;
        let (old_id, new_id) = (old_provider.master_key_id(), new_provider.master_key_id());
        if old_id == new_id {
            return Err(Error::invalid(
                "new",
                format!("is the master key already in use ({old_id})"),
            ));
        }
        let started = now();
        let mut tx = self.databases().secure.begin().await?;
        lock_rotations(&mut tx.conn()).await?;
        let rows = encryption_keys::list_all(&mut tx.conn()).await?;
        for row in &rows {
            let (wrapped, nonce, master_key_id) =
                keyring::rewrap(row, old_provider.as_ref(), new_provider.as_ref())?;
            encryption_keys::update_wrapping(
                &mut tx.conn(),
                row.id,
                &Opaque(wrapped),
                &Opaque(nonce),
                &master_key_id,
            )
            .await?;
        }
        let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let at = now();
        let rotation = KeyRotation {
            id: KeyRotationId::new(),
            rotation_type: RotationType::MasterKey,
            old_key_id: None,
            new_key_id: None,
            old_master_key_id: Some(old_id.clone()),
            new_master_key_id: Some(new_id.clone()),
            status: RotationStatus::Completed,
            total_items: count,
            rotated_items: count,
            last_item_id: None,
            error_message: None,
            initiated_by_user_id: actor.user_id(),
            started_at: started,
            completed_at: Some(at),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        key_rotation_history::insert(&mut tx.conn(), &rotation).await?;
        append(
            &mut tx.conn(),
            AuditLogKind::Secure,
            actor,
            AuditEntry::new("master_key.rotated", "rotate")
                .resource("key_rotation", rotation.id)
                .details(json!({
                    "old_master_key_id": old_id,
                    "new_master_key_id": new_id,
                    "data_keys": count,
                })),
        )
        .await?;
        failpoint!("rotation.master_key_written")?;
        // From the commit on, a concurrent reload reads rows wrapped under
        // the new key, before this handle switches to it just below.
        self.keyring().expect_provider(Some(new_provider.clone()))?;
        let committed = match tx.commit().await {
            Ok(()) => failpoint!("rotation.master_key_committed"),
            Err(err) => Err(err),
        };
        if let Err(err) = committed
            && let Err(err) = self.confirm_master_key_rotation(err, &new_id, count).await
        {
            self.keyring().expect_provider(None)?;
            return Err(err);
        }
        self.keyring().set_provider(new_provider)?;
        self.keyring().reload(&self.databases().secure).await?;
        let mut report = RotationReport::from_row(&rotation, false);
        report.rotated_this_call = count;
        Ok(report)
    }

    /// After a master-key rotation's commit reported `err`: a commit can
    /// fail after the server made it durable (the connection lost before
    /// the answer), and a host told "failed" keeps the old key and discards
    /// the new one, which then alone opens the data. So the data keys are
    /// read again: Ok when every one is wrapped under `new_id` (the rotation
    /// took effect), `err` when none is, and otherwise an error that says
    /// to keep both keys.
    async fn confirm_master_key_rotation(
        &self,
        err: Error,
        new_id: &str,
        count: i64,
    ) -> Result<()> {
        let rows = async {
            let mut conn = self.databases().secure.acquire().await?;
            encryption_keys::list_all(&mut conn.conn()).await
        }
        .await;
        let rotated = match &rows {
            Ok(rows) => rows.iter().filter(|r| r.master_key_id == new_id).count(),
            Err(_) => 0,
        };
        match rows {
            Ok(rows) if !rows.is_empty() && rotated == rows.len() => {
                tracing::warn!(error = %err, data_keys = count, "the master-key rotation's commit reported an error, but it took effect");
                Ok(())
            }
            Ok(_) if rotated == 0 => Err(err),
            _ => Err(Error::database(format!(
                "the master-key rotation's commit failed ({err}) and whether it took effect \
                 cannot be read now: keep both master keys; open with the new one ({new_id}), \
                 and if it is refused, with the old one"
            ))),
        }
    }

    /// Every data key (no key material) with what is still sealed under it.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn key_status(&self, actor: &Actor) -> Result<Vec<DataKeyStatus>> {
        self.authorize(actor, Access::new("keys", "read")).await?;
        let mut secure = self.databases().acquire_secure_read().await?;
        let mut core = self.databases().acquire_core_read().await?;
        let mut out = Vec::new();
        for key in encryption_keys::list_all(&mut secure.conn()).await? {
            let private_keys = private_keys::count_sealed_by(&mut secure.conn(), key.id).await?;
            let mfa_secrets = users::count_mfa_sealed_by(&mut core.conn(), key.id).await?;
            out.push(DataKeyStatus {
                key,
                private_keys,
                mfa_secrets,
            });
        }
        Ok(out)
    }

    /// Data-key and master-key rotations, oldest first.
    #[tracing::instrument(skip_all, fields(actor = actor.log_kind(), organization), err(level = "info"))]
    pub async fn list_key_rotations(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<KeyRotation>> {
        self.authorize(actor, Access::new("keys", "read")).await?;
        let mut conn = self.databases().acquire_secure_read().await?;
        key_rotation_history::list_key_rotations(
            &mut conn.conn(),
            &KeyRotationFilter::default(),
            page,
        )
        .await
    }
}

impl Clm {
    /// Called by every transaction that inserts sealed private keys, before
    /// it does: takes the data-key lock shared and re-seals under the active
    /// key any of `keys` sealed under a key retired since they were sealed
    /// (their ring was loaded before a rotation, here or in another process,
    /// and their write queued behind its completion).
    pub(crate) async fn keep_off_retired_keys(
        &self,
        conn: &mut Conn<'_>,
        keys: &mut [PrivateKeyRecord],
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        lock_data_keys(conn, false).await?;
        let retired = encryption_keys::retired_among(conn, &data_key_ids(keys)).await?;
        self.reseal_off(conn, keys, &retired).await
    }

    /// Inserts sealed private keys in a transaction begun with
    /// `begin_secure_half` (so holding the data-key lock shared), then re-seals,
    /// before the caller commits, any the insert found sealed under a key
    /// retired since they were sealed: [`Clm::keep_off_retired_keys`] with
    /// the check folded into the insert.
    pub(crate) async fn insert_private_keys(
        &self,
        conn: &mut Conn<'_>,
        keys: &[PrivateKeyRecord],
    ) -> Result<()> {
        let flagged = private_keys::insert_many_naming_retired(conn, keys).await?;
        self.reseal_named_retired(conn, keys, &flagged).await
    }

    /// Re-seals under the active data key those of `keys` (just inserted)
    /// that the insert found sealed under a retired one (`flagged`).
    pub(crate) async fn reseal_named_retired(
        &self,
        conn: &mut Conn<'_>,
        keys: &[PrivateKeyRecord],
        flagged: &[PrivateKeyId],
    ) -> Result<()> {
        if flagged.is_empty() {
            return Ok(());
        }
        let mut stale: Vec<PrivateKeyRecord> = keys
            .iter()
            .filter(|k| flagged.contains(&k.id))
            .cloned()
            .collect();
        let retired = encryption_keys::retired_among(conn, &data_key_ids(&stale)).await?;
        self.reseal_off(conn, &mut stale, &retired).await?;
        for key in &stale {
            private_keys::update(conn, key).await?;
        }
        Ok(())
    }

    /// Re-seals under the active key every one of `keys` sealed under one
    /// of `retired`. The caller holds the data-key lock shared.
    async fn reseal_off(
        &self,
        conn: &mut Conn<'_>,
        keys: &mut [PrivateKeyRecord],
        retired: &[EncryptionKey],
    ) -> Result<()> {
        if retired.is_empty() {
            return Ok(());
        }
        // Under the lock no key can be retired, so the active key read now
        // stays usable until this transaction commits.
        self.keyring().reload_on(conn).await?;
        let active = self.keyring().active_key_id()?;
        for old in retired {
            let detached = self.keyring().detach(old)?;
            let stale: Vec<&mut PrivateKeyRecord> = keys
                .iter_mut()
                .filter(|k| k.encryption_key_id == old.id)
                .collect();
            tracing::warn!(
                key_id = %old.key_id,
                count = stale.len(),
                "re-sealing private keys sealed under a data key retired before their write"
            );
            for key in stale {
                let aad = private_key_aad(key.certificate_id);
                let sealed = Sealed {
                    nonce: key.nonce.0.clone(),
                    ciphertext: key.encrypted_key_material.0.clone(),
                };
                let resealed =
                    self.keyring()
                        .reseal_detached(&detached, active, &sealed, &aad_refs(&aad))?;
                key.encryption_key_id = active;
                key.encrypted_key_material = Opaque(resealed.ciphertext);
                key.nonce = Opaque(resealed.nonce);
            }
        }
        Ok(())
    }

    /// Loads `key_id` before a value sealed under it is opened, when this
    /// ring does not hold it: a key made by a rotation in another process is
    /// learned on first use. A retired key stays unloaded (opening fails).
    pub(crate) async fn load_data_key(&self, key_id: EncryptionKeyId) -> Result<()> {
        if self.keyring().holds(key_id)? {
            return Ok(());
        }
        self.keyring().reload(&self.databases().secure).await
    }

    /// Seals a value for a write in the caller's transaction, which has
    /// taken [`lock_data_keys`] (shared) in its own database: under the
    /// active key, checked not to have been retired meanwhile (the ring
    /// reloads if it was). For values outside `secure` (MFA secrets).
    pub(crate) async fn seal_under_live_key(
        &self,
        plaintext: &[u8],
        aad: &[&str],
    ) -> Result<(EncryptionKeyId, Sealed)> {
        for _ in 0..2 {
            let (key_id, sealed) = self.keyring().seal(plaintext, aad)?;
            let mut conn = self.databases().secure.acquire().await?;
            if encryption_keys::retired_among(&mut conn.conn(), &[key_id])
                .await?
                .is_empty()
            {
                return Ok((key_id, sealed));
            }
            self.keyring().reload_on(&mut conn.conn()).await?;
        }
        Err(Error::conflict(
            "the active data key was retired while sealing; try again",
        ))
    }
}

/// Keys nothing may stay sealed under, oldest version first: decrypt-only
/// keys (retired once drained) and retired ones (a rotation also repairs
/// anything found under those).
async fn keys_to_drain(tx: &mut Tx) -> Result<Vec<EncryptionKey>> {
    Ok(encryption_keys::list_all(&mut tx.conn())
        .await?
        .into_iter()
        .filter(|k| matches!(k.key_status, KeyStatus::DecryptOnly | KeyStatus::Retired))
        .collect())
}

#[cfg(test)]
mod tests {
    //! Unit-level so tests can seal private keys through the crate-private
    //! sealing path issuance uses. Both backends, like `tests/common`:
    //! PostgreSQL from `CLM_TEST_PG_URL`; unreachable is a failure when `CI` is set.

    use std::future::Future;
    use std::panic::AssertUnwindSafe;
    use std::sync::Mutex;

    use base64::Engine;
    use futures::FutureExt;

    use super::*;
    use crate::crypto::{
        CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, build_certificate,
        parse_certificate_der, parse_certificates,
    };
    use crate::exec;
    use crate::model::{CertificateId, CertificateKind, CertificateSource, PrivateKeyId};
    use crate::service::certificates::{Ownership, certificate_row};
    use crate::store::certificates::Certificates;
    use crate::store::private_keys::PrivateKeyFilter;
    use crate::{ClmConfig, ErrorCode};

    fn master(byte: u8) -> MasterKeySource {
        MasterKeySource::Base64(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
    }

    async fn open(config: &ClmConfig, key: u8) -> Result<Clm> {
        Clm::open(config.clone().with_master_key(master(key))).await
    }

    /// Runs `body` on SQLite (temp dir), then on a fresh PostgreSQL pair
    /// that is dropped whether the body passes or panics.
    async fn on_both<F, Fut>(body: F)
    where
        F: Fn(ClmConfig) -> Fut,
        Fut: Future<Output = ()>,
    {
        eprintln!("--- backend: sqlite");
        let dir = tempfile::tempdir().expect("tempdir");
        body(ClmConfig::sqlite(dir.path()).with_max_connections(4)).await;
        drop(dir);

        let base = std::env::var("CLM_TEST_PG_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into())
            .trim_end_matches('/')
            .to_string();
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&format!("{base}/postgres"))
            .await;
        let admin = match admin {
            Ok(admin) => admin,
            Err(err) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL at {base} is unreachable and CI is set: {err}")
            }
            Err(err) => {
                eprintln!("!!! SKIPPING the PostgreSQL half: {base} unreachable ({err})");
                return;
            }
        };
        let stem = format!("clm_test_{}", uuid::Uuid::new_v4().simple());
        let (secure, core) = (format!("{stem}_secure"), format!("{stem}_core"));
        for name in [&secure, &core] {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .expect("CREATE DATABASE");
        }
        eprintln!("--- backend: postgres ({secure})");
        let config = ClmConfig::postgres(format!("{base}/{secure}"), format!("{base}/{core}"))
            .with_max_connections(4);
        let outcome = AssertUnwindSafe(body(config)).catch_unwind().await;
        for name in [&secure, &core] {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        }
        admin.close().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// `n` self-signed P-256 certificates with keys sealed the way issuance
    /// seals them.
    async fn seed(clm: &Clm, n: usize) -> Vec<CertificateId> {
        let at = now();
        let (mut rows, mut keys) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
            let template = CertificateTemplate::new(
                DistinguishedName::common_name(format!("rot{i}.example.com")),
                CertificateKind::TlsServer,
                at - chrono::Duration::hours(1),
                at + chrono::Duration::days(30),
            );
            let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
                .expect("certificate");
            let parsed = parse_certificate_der(&der).expect("parse");
            let row = certificate_row(
                &parsed,
                CertificateKind::TlsServer,
                CertificateSource::Issued,
                None,
                &Ownership::default(),
            );
            keys.push(clm.seal_private_key(row.id, &key).expect("seal"));
            rows.push(row);
        }
        let mut tx = clm.databases().secure.begin().await.expect("begin");
        crate::store::certificates::insert_many(&mut tx.conn(), &rows)
            .await
            .expect("certificates");
        private_keys::insert_many(&mut tx.conn(), &keys)
            .await
            .expect("private keys");
        tx.commit().await.expect("commit");
        rows.into_iter().map(|r| r.id).collect()
    }

    async fn all_keys(clm: &Clm) -> Vec<PrivateKeyRecord> {
        let mut conn = clm.databases().secure.acquire().await.expect("conn");
        private_keys::list_private_keys(
            &mut conn.conn(),
            &PrivateKeyFilter::default(),
            &PageRequest::first(1000),
        )
        .await
        .expect("list keys")
        .items
    }

    /// Every private key opens and matches its certificate; returns them.
    async fn verify_all(clm: &Clm) -> Vec<PrivateKeyRecord> {
        let keys = all_keys(clm).await;
        let mut conn = clm.databases().secure.acquire().await.expect("conn");
        for record in &keys {
            let key = clm.open_private_key(record).expect("private key opens");
            let cert =
                crate::store::get::<Certificates>(&mut conn.conn(), record.certificate_id, true)
                    .await
                    .expect("certificate");
            let parsed = parse_certificates(cert.certificate_pem.as_bytes()).expect("pem");
            assert!(
                key.matches_public_key(&parsed[0].public_key_der),
                "key of {} matches",
                record.certificate_id
            );
        }
        keys
    }

    async fn history(clm: &Clm) -> Vec<KeyRotation> {
        clm.list_key_rotations(&clm.system_actor(), &PageRequest::first(100))
            .await
            .expect("rotations")
            .items
    }

    fn status_of(statuses: &[DataKeyStatus], id: EncryptionKeyId) -> &DataKeyStatus {
        statuses
            .iter()
            .find(|s| s.key.id == id)
            .expect("key in status")
    }

    /// A key sealed before its data key was retired and written after:
    /// the writer's insert names it (on PostgreSQL through RETURNING) and
    /// the writer re-seals it under the active key before committing.
    #[tokio::test]
    async fn the_writer_reseals_a_key_sealed_under_a_key_retired_meanwhile() {
        on_both(|config| async move {
            let clm = open(&config, 0x42).await.expect("open");
            seed(&clm, 2).await;
            let old = clm.keyring().active_key_id().expect("active key");
            let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
            let template = CertificateTemplate::new(
                DistinguishedName::common_name("late.example.com"),
                CertificateKind::TlsServer,
                now() - chrono::Duration::hours(1),
                now() + chrono::Duration::days(30),
            );
            let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
                .expect("certificate");
            let row = certificate_row(
                &parse_certificate_der(&der).expect("parse"),
                CertificateKind::TlsServer,
                CertificateSource::Issued,
                None,
                &Ownership::default(),
            );
            let late = clm.seal_private_key(row.id, &key).expect("seal");
            assert_eq!(late.encryption_key_id, old);

            let report = clm
                .rotate_data_key(&clm.system_actor(), RotationOptions::default())
                .await
                .expect("rotation");
            assert_eq!(report.status, RotationStatus::Completed, "{report:?}");
            let statuses = clm.key_status(&clm.system_actor()).await.expect("status");
            assert_eq!(status_of(&statuses, old).key.key_status, KeyStatus::Retired);

            let mut tx = clm
                .databases()
                .secure
                .begin_secure_half()
                .await
                .expect("begin");
            crate::store::certificates::insert_many(&mut tx.conn(), std::slice::from_ref(&row))
                .await
                .expect("certificate");
            clm.insert_private_keys(&mut tx.conn(), std::slice::from_ref(&late))
                .await
                .expect("private key");
            tx.commit().await.expect("commit");

            let stored = verify_all(&clm)
                .await
                .into_iter()
                .find(|k| k.id == late.id)
                .expect("the late key is stored");
            assert_ne!(
                stored.encryption_key_id, old,
                "re-sealed off the retired key"
            );
            assert_eq!(
                stored.encryption_key_id,
                clm.keyring().active_key_id().expect("active")
            );
        })
        .await;
    }

    #[tokio::test]
    async fn rotation_reseals_every_key_and_retires_the_old_one() {
        on_both(|config| async move {
            let clm = open(&config, 0x42).await.expect("open");
            let system = clm.system_actor();
            seed(&clm, 25).await;
            let old_key = clm.keyring().active_key_id().expect("active");

            let seen = Mutex::new(Vec::new());
            let record = |p: RotationProgress| seen.lock().expect("lock").push(p);
            let report = clm
                .rotate_data_key(
                    &system,
                    RotationOptions {
                        batch_size: 7,
                        progress: Some(&record),
                        max_batches: None,
                    },
                )
                .await
                .expect("rotate");
            assert_eq!(report.status, RotationStatus::Completed);
            assert!(!report.resumed);
            assert_eq!(report.old_key_id, Some(old_key));
            assert_eq!(
                (
                    report.total_items,
                    report.rotated_items,
                    report.rotated_this_call
                ),
                (25, 25, 25)
            );
            assert_eq!(report.batches, 4);
            assert_eq!(report.retired_key_ids, vec![old_key]);
            let new_key = report.new_key_id.expect("new key");
            assert_eq!(clm.keyring().active_key_id().expect("active"), new_key);
            let seen = seen.into_inner().expect("lock");
            assert_eq!(
                seen.iter().map(|p| p.rotated).collect::<Vec<_>>(),
                vec![7, 14, 21, 25]
            );
            assert!(
                seen.iter()
                    .all(|p| p.total == 25 && p.rotation_id == report.rotation_id)
            );

            let keys = verify_all(&clm).await;
            assert_eq!(keys.len(), 25);
            assert!(keys.iter().all(|k| k.encryption_key_id == new_key));

            let statuses = clm.key_status(&system).await.expect("status");
            let old = status_of(&statuses, old_key);
            assert_eq!(old.key.key_status, KeyStatus::Retired);
            assert!(old.key.retired_at.is_some());
            assert_eq!(old.private_keys, 0);
            let new = status_of(&statuses, new_key);
            assert_eq!(
                (new.key.key_status, new.private_keys),
                (KeyStatus::Active, 25)
            );
            assert_eq!(new.key.key_version, old.key.key_version + 1);
            assert_eq!(new.key.encryption_count, 25);

            let rows = history(&clm).await;
            assert_eq!(rows.len(), 1);
            let row = &rows[0];
            assert_eq!(
                (row.rotation_type, row.status),
                (RotationType::DataKey, RotationStatus::Completed)
            );
            assert_eq!(
                (row.old_key_id, row.new_key_id),
                (Some(old_key), Some(new_key))
            );
            assert_eq!((row.total_items, row.rotated_items), (25, 25));
            assert!(row.completed_at.is_some());

            // A second rotation moves everything again, to version 3.
            let again = clm
                .rotate_data_key(&system, RotationOptions::default())
                .await
                .expect("rotate again");
            assert_eq!(
                (again.status, again.rotated_items, again.batches),
                (RotationStatus::Completed, 25, 1)
            );
            assert_eq!(again.retired_key_ids, vec![new_key]);
            verify_all(&clm).await;

            let chain = clm
                .verify_audit_chain(&system, AuditLogKind::Secure)
                .await
                .expect("verify");
            assert!(chain.is_intact(), "{chain:?}");
            clm.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn interrupted_rotation_resumes_and_sealing_uses_the_new_key() {
        on_both(|config| async move {
            let clm = open(&config, 0x42).await.expect("open");
            let system = clm.system_actor();
            seed(&clm, 20).await;
            let old_key = clm.keyring().active_key_id().expect("active");
            // An MFA secret sealed under the old key.
            let user = clm
                .create_user(
                    &system,
                    crate::service::identity::NewUser {
                        username: "rotating-user".into(),
                        email: "rotating-user@example.com".into(),
                        password: Some(crate::crypto::SecretString::new(
                            "Unrelated-passphrase-77".into(),
                        )),
                        ..Default::default()
                    },
                )
                .await
                .expect("user");
            let actor = clm.actor_for_user(user.id).await.expect("actor");
            clm.begin_mfa_enrollment(
                &actor,
                crate::crypto::SecretString::new("Unrelated-passphrase-77".into()),
            )
            .await
            .expect("enroll");

            let stop = RotationOptions {
                batch_size: 3,
                max_batches: Some(1),
                ..Default::default()
            };
            let first = clm
                .rotate_data_key(&system, stop)
                .await
                .expect("first batch");
            assert_eq!(first.status, RotationStatus::InProgress);
            assert_eq!(
                (first.total_items, first.rotated_items, first.batches),
                (20, 3, 1)
            );
            let new_key = first.new_key_id.expect("new key");
            let row = &history(&clm).await[0];
            assert_eq!(
                (row.status, row.rotated_items, row.total_items),
                (RotationStatus::InProgress, 3, 20)
            );
            let cursor = row.last_item_id.expect("cursor recorded");
            assert!(row.completed_at.is_none());

            // Mid-rotation: the old key still opens, is decrypt-only, and
            // new sealing (issuance) uses the new key.
            let statuses = clm.key_status(&system).await.expect("status");
            let old = status_of(&statuses, old_key);
            assert_eq!(
                (old.key.key_status, old.private_keys, old.mfa_secrets),
                (KeyStatus::DecryptOnly, 17, 1)
            );
            verify_all(&clm).await;
            let issued = seed(&clm, 2).await;
            for key in all_keys(&clm)
                .await
                .iter()
                .filter(|k| issued.contains(&k.certificate_id))
            {
                assert_eq!(key.encryption_key_id, new_key);
            }

            let second = clm
                .rotate_data_key(
                    &system,
                    RotationOptions {
                        max_batches: Some(2),
                        ..stop
                    },
                )
                .await
                .expect("resume");
            assert!(second.resumed);
            assert_eq!(
                (
                    second.new_key_id,
                    second.rotated_items,
                    second.rotated_this_call
                ),
                (Some(new_key), 9, 6)
            );
            let row = &history(&clm).await[0];
            assert!(row.last_item_id.expect("cursor") > cursor);

            let last = clm
                .rotate_data_key(&system, RotationOptions::default())
                .await
                .expect("finish");
            assert!(last.resumed);
            assert_eq!(last.status, RotationStatus::Completed);
            assert_eq!(
                (last.new_key_id, last.total_items, last.rotated_items),
                (Some(new_key), 20, 20)
            );
            assert_eq!(last.mfa_secrets_resealed, 1);
            assert_eq!(last.retired_key_ids, vec![old_key]);

            let keys = verify_all(&clm).await;
            assert_eq!(keys.len(), 22);
            assert!(keys.iter().all(|k| k.encryption_key_id == new_key));
            let rows = history(&clm).await;
            assert_eq!(rows.len(), 1, "resumed, not restarted");
            assert_eq!(
                (rows[0].status, rows[0].rotated_items),
                (RotationStatus::Completed, 20)
            );

            // The MFA secret moved and still opens under its row binding.
            let stored = {
                let mut core = clm.databases().core.acquire().await.expect("core");
                crate::store::get::<users::Users>(&mut core.conn(), user.id, false)
                    .await
                    .expect("user")
            };
            assert_eq!(stored.mfa_encryption_key_id, Some(new_key));
            let sealed = Sealed {
                nonce: stored.mfa_secret_nonce.expect("nonce").0,
                ciphertext: stored.mfa_secret.expect("secret").0,
            };
            let aad = mfa_aad(user.id);
            let secret = clm
                .keyring()
                .open(new_key, &sealed, &aad_refs(&aad))
                .expect("MFA secret opens");
            assert_eq!(secret.len(), crate::crypto::totp::SECRET_LEN);
            clm.close().await;
        })
        .await;
    }

    async fn swap_sealing(clm: &Clm, id: PrivateKeyId, material: &Opaque, nonce: &Opaque) {
        let mut conn = clm.databases().secure.acquire().await.expect("conn");
        let mut conn = conn.conn();
        exec!(&mut conn, |c| sqlx::query(
            "UPDATE private_keys SET encrypted_key_material = $2, nonce = $3 WHERE id = $1"
        )
        .bind(id)
        .bind(material)
        .bind(nonce))
        .expect("update");
    }

    #[tokio::test]
    async fn a_ciphertext_moved_to_another_row_does_not_open() {
        on_both(|config| async move {
            let clm = open(&config, 0x42).await.expect("open");
            let system = clm.system_actor();
            seed(&clm, 3).await;
            let keys = all_keys(&clm).await;
            let (a, b) = (&keys[0], &keys[1]);
            swap_sealing(&clm, b.id, &a.encrypted_key_material, &a.nonce).await;
            let moved = all_keys(&clm)
                .await
                .into_iter()
                .find(|k| k.id == b.id)
                .expect("b");
            let err = clm
                .open_private_key(&moved)
                .expect_err("moved ciphertext must not open");
            assert_eq!(err.code(), ErrorCode::Crypto, "{err}");

            // A rotation refuses it, names the row, and stays resumable.
            let err = clm
                .rotate_data_key(&system, RotationOptions::default())
                .await
                .expect_err("rotation stops at the bad row");
            assert_eq!(err.code(), ErrorCode::Crypto);
            assert!(err.to_string().contains(&b.id.to_string()), "{err}");
            let row = &history(&clm).await[0];
            assert_eq!(row.status, RotationStatus::InProgress);
            assert!(
                row.error_message
                    .as_deref()
                    .is_some_and(|m| m.contains(&b.id.to_string()))
            );

            // Repaired, the rotation resumes and completes.
            swap_sealing(&clm, b.id, &b.encrypted_key_material, &b.nonce).await;
            let done = clm
                .rotate_data_key(&system, RotationOptions::default())
                .await
                .expect("resume");
            assert!(done.resumed);
            assert_eq!(
                (done.status, done.rotated_items),
                (RotationStatus::Completed, 3)
            );
            assert!(history(&clm).await[0].error_message.is_none());
            verify_all(&clm).await;
            clm.close().await;
        })
        .await;
    }

    #[tokio::test]
    async fn master_key_rotation_rewraps_every_data_key() {
        on_both(|config| async move {
            let clm = open(&config, 0x42).await.expect("open");
            let system = clm.system_actor();
            seed(&clm, 4).await;
            clm.rotate_data_key(&system, RotationOptions::default())
                .await
                .expect("data key");

            let err = clm
                .rotate_master_key(&system, master(0x42))
                .await
                .expect_err("same key");
            assert_eq!(err.code(), ErrorCode::InvalidInput);

            let report = clm
                .rotate_master_key(&system, master(0x43))
                .await
                .expect("master key");
            assert_eq!(
                (report.rotation_type, report.status),
                (RotationType::MasterKey, RotationStatus::Completed)
            );
            assert_eq!((report.total_items, report.rotated_items), (2, 2));
            assert_ne!(report.old_master_key_id, report.new_master_key_id);
            // This handle keeps working, and can rotate data keys under the new master key.
            verify_all(&clm).await;
            clm.rotate_data_key(&system, RotationOptions::default())
                .await
                .expect("data key after master");
            verify_all(&clm).await;
            let rows = history(&clm).await;
            assert_eq!(
                rows.iter().map(|r| r.rotation_type).collect::<Vec<_>>(),
                vec![
                    RotationType::DataKey,
                    RotationType::MasterKey,
                    RotationType::DataKey
                ]
            );
            assert_eq!(rows[1].new_master_key_id, report.new_master_key_id);
            clm.close().await;

            let err = open(&config, 0x42)
                .await
                .expect_err("old master key must not open");
            assert_eq!(err.code(), ErrorCode::Configuration, "{err}");
            let clm = open(&config, 0x43).await.expect("new master key opens");
            assert_eq!(verify_all(&clm).await.len(), 4);
            clm.close().await;
        })
        .await;
    }
}
