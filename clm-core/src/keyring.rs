//! Secrets at rest: the host's master key wraps the data-encryption keys kept
//! in `encryption_keys`; the active data key seals private keys and MFA
//! secrets. Unwrapped data keys live only in memory, in zeroizing buffers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::Engine;

use crate::crypto::envelope::{self, Sealed};
use crate::crypto::secret::SecretBytes;
use crate::db::Pool;
use crate::model::{
    CertificateId, EncryptionKey, EncryptionKeyId, KeyStatus, KeyType, Opaque, UserId,
};
use crate::store::{self, encryption_keys};
use crate::{Error, Result};

/// Wraps and unwraps data keys under a master key the host controls: a local
/// 32-byte key, or a KMS/HSM behind this trait.
pub trait KeyProvider: Send + Sync {
    /// A stable, non-secret identifier of the master key (recorded with each
    /// wrapped data key so the wrong master key is detected at open).
    fn master_key_id(&self) -> String;
    /// Encrypts a data key under the master key, bound to `aad` (the key
    /// row's id and version), so that `unwrap` refuses it with any other `aad`.
    fn wrap(&self, data_key: &SecretBytes, aad: &[u8]) -> Result<Sealed>;
    /// Reverses `wrap`. Must fail when the master key or `aad` differ; a
    /// failure at open is reported as a wrong master key.
    fn unwrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<SecretBytes>;
    /// A 32-byte key for one `purpose`, derived from the master key so the
    /// host keeps no second secret (audit checkpoints are signed with it).
    /// Providers whose key never leaves a KMS/HSM may leave this unsupported.
    fn derive_key(&self, purpose: &str) -> Result<SecretBytes> {
        Err(Error::Configuration(format!(
            "the master key provider ({}) cannot derive a key for {purpose}",
            self.master_key_id()
        )))
    }
}

/// A 32-byte master key held in memory.
pub struct LocalMasterKey {
    key: SecretBytes,
    id: String,
}

impl std::fmt::Debug for LocalMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalMasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

const MASTER_KEY_VERSION: u32 = 1;

impl LocalMasterKey {
    /// From the 32 raw key bytes; a Configuration error for any other length.
    pub fn new(key: SecretBytes) -> Result<Self> {
        if key.len() != envelope::DATA_KEY_LEN {
            return Err(Error::Configuration(format!(
                "master key must be {} bytes, got {}",
                envelope::DATA_KEY_LEN,
                key.len()
            )));
        }
        let id = crate::crypto::token::sha256_hex(
            &[b"clm master key id v1:".as_slice(), key.expose()].concat(),
        );
        Ok(LocalMasterKey {
            key,
            id: format!("local:{}", &id[..16]),
        })
    }

    /// From standard base64 (as in `CLM_MASTER_KEY`).
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| Error::Configuration("master key is not valid base64".into()))?;
        Self::new(SecretBytes::new(bytes))
    }

    /// From a file holding the key as base64 (or 32 raw bytes).
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|err| {
            Error::Configuration(format!(
                "cannot read master key file {}: {err}",
                path.display()
            ))
        })?;
        let bytes = SecretBytes::new(bytes);
        if bytes.len() == envelope::DATA_KEY_LEN {
            return Self::new(bytes);
        }
        let text = std::str::from_utf8(bytes.expose()).map_err(|_| {
            Error::Configuration(format!(
                "master key file {} is neither 32 bytes nor base64",
                path.display()
            ))
        })?;
        Self::from_base64(text)
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh random key.
    /// Returns whether it was created. Two processes creating it at once end
    /// up with the same key: the one that publishes first wins, the other
    /// reads its file.
    pub fn from_file_or_create(path: &Path) -> Result<(Self, bool)> {
        if path.exists() {
            return Ok((Self::from_file(path)?, false));
        }
        let key = envelope::generate_data_key();
        let encoded =
            zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                Error::Configuration(format!("cannot create {}: {err}", parent.display()))
            })?;
        }
        if !write_new_private_file(path, encoded.as_bytes())? {
            return Ok((Self::from_file(path)?, false));
        }
        Ok((Self::new(key)?, true))
    }
}

/// Writes a new key file so that a crash or a power loss leaves either no
/// file or the whole key, never a partial one (a key that sealed data and
/// cannot be read back loses all of it): the key goes to a temporary file
/// beside `path` (mode 0600 on Unix), which is synced and then published
/// under `path` in one step, and the directory is synced so the name stays.
/// The step is a hard link, the rename that never replaces: a file another
/// process published meanwhile is kept (false is returned and the caller
/// reads it), where a rename would swap the key under that process.
fn write_new_private_file(path: &Path, contents: &[u8]) -> Result<bool> {
    let failed = |what: &str, err: std::io::Error| {
        Error::Configuration(format!(
            "cannot {what} master key file {}: {err}",
            path.display()
        ))
    };
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Configuration(format!("{} names no file", path.display())))?;
    let temporary = directory.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        uuid::Uuid::new_v4().simple()
    ));
    let published =
        publish_synced(&temporary, path, contents).map_err(|(what, err)| failed(what, err));
    // The temporary name goes either way (on success the key stays under
    // `path`); one left behind holds a key that never sealed anything.
    if let Err(err) = std::fs::remove_file(&temporary)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %temporary.display(), error = %err, "could not remove a temporary master key file");
    }
    let published = published?;
    #[cfg(unix)]
    std::fs::File::open(&directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|err| failed("sync the directory of the", err))?;
    Ok(published)
}

/// Writes `contents` to the new file `temporary`, syncs it, and links it
/// to `path`; false when `path` exists. The error names the step.
fn publish_synced(
    temporary: &Path,
    path: &Path,
    contents: &[u8],
) -> std::result::Result<bool, (&'static str, std::io::Error)> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(temporary).map_err(|err| ("create", err))?;
    file.write_all(contents).map_err(|err| ("write", err))?;
    file.sync_all().map_err(|err| ("sync", err))?;
    failpoint!("keyring.key_file_synced")
        .map_err(|err| ("publish", std::io::Error::other(err.to_string())))?;
    match std::fs::hard_link(temporary, path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(("publish", err)),
    }
}

impl KeyProvider for LocalMasterKey {
    fn master_key_id(&self) -> String {
        self.id.clone()
    }
    fn wrap(&self, data_key: &SecretBytes, aad: &[u8]) -> Result<Sealed> {
        envelope::seal(&self.key, MASTER_KEY_VERSION, data_key.expose(), aad)
    }
    fn unwrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<SecretBytes> {
        envelope::open(&self.key, MASTER_KEY_VERSION, sealed, aad)
    }
    /// HMAC-SHA256(master key, domain label + purpose): a different key per
    /// purpose, none of which reveals the master key or another purpose's key.
    fn derive_key(&self, purpose: &str) -> Result<SecretBytes> {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.key.expose())
            .map_err(|_| Error::Internal("HMAC accepts any key length".into()))?;
        mac.update(b"clm derived key v1:");
        mac.update(purpose.as_bytes());
        Ok(SecretBytes::new(mac.finalize().into_bytes().to_vec()))
    }
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// Base64 text of 32 bytes.
    Base64(String),
    /// A key file (base64 or 32 raw bytes).
    File(PathBuf),
    /// A key file, created with a new random key when missing.
    FileOrCreate(PathBuf),
    /// A host-implemented provider (KMS, HSM).
    Provider(Arc<dyn KeyProvider>),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Base64(_) => f.write_str("Base64([redacted])"),
            MasterKeySource::File(p) => f.debug_tuple("File").field(p).finish(),
            MasterKeySource::FileOrCreate(p) => f.debug_tuple("FileOrCreate").field(p).finish(),
            MasterKeySource::Provider(p) => {
                f.debug_tuple("Provider").field(&p.master_key_id()).finish()
            }
        }
    }
}

impl MasterKeySource {
    /// Resolves the provider; the flag says whether a key file was created.
    pub fn resolve(&self) -> Result<(Arc<dyn KeyProvider>, bool)> {
        Ok(match self {
            MasterKeySource::Base64(text) => (Arc::new(LocalMasterKey::from_base64(text)?), false),
            MasterKeySource::File(path) => (Arc::new(LocalMasterKey::from_file(path)?), false),
            MasterKeySource::FileOrCreate(path) => {
                let (key, created) = LocalMasterKey::from_file_or_create(path)?;
                (Arc::new(key), created)
            }
            MasterKeySource::Provider(provider) => (provider.clone(), false),
        })
    }
}

struct LoadedKey {
    version: u32,
    key: SecretBytes,
}

struct RingState {
    keys: HashMap<EncryptionKeyId, LoadedKey>,
    active: EncryptionKeyId,
}

/// The unwrapped data keys, for sealing (active key) and opening (any key
/// that is not retired).
pub struct KeyRing {
    provider: RwLock<Arc<dyn KeyProvider>>,
    /// The master key a rotation in progress rewraps the data keys under.
    /// Its commit makes the rewrapped rows visible before this handle
    /// switches to it, and a reload in that moment (a concurrent writer)
    /// must open them: the rows name their master key, and it is chosen by
    /// that name.
    incoming: RwLock<Option<Arc<dyn KeyProvider>>>,
    state: RwLock<RingState>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing([redacted])")
    }
}

/// Associated data binding a wrapped data key to its row and version.
fn wrap_aad(key: &EncryptionKey) -> Vec<u8> {
    envelope::aad(&[
        "encryption_keys",
        &key.id.to_string(),
        &key.key_version.to_string(),
    ])
}

fn unwrap_key(provider: &dyn KeyProvider, key: &EncryptionKey) -> Result<LoadedKey> {
    if key.master_key_id != provider.master_key_id() {
        return Err(Error::Configuration(format!(
            "the configured master key ({}) is not the one that wrapped data key {} ({}); open with the right master key",
            provider.master_key_id(),
            key.key_id,
            key.master_key_id
        )));
    }
    let sealed = Sealed {
        nonce: key.wrap_nonce.0.clone(),
        ciphertext: key.wrapped_key.0.clone(),
    };
    let data_key = provider.unwrap(&sealed, &wrap_aad(key)).map_err(|_| {
        Error::Configuration(format!(
            "data key {} does not open with the configured master key: wrong master key or tampered key row",
            key.key_id
        ))
    })?;
    Ok(LoadedKey {
        version: u32::try_from(key.key_version)
            .map_err(|_| Error::Internal("negative key version".into()))?,
        key: data_key,
    })
}

/// Builds a new data key row (not yet inserted) wrapped by `provider`.
pub fn new_data_key(
    provider: &dyn KeyProvider,
    version: i32,
    status: KeyStatus,
) -> Result<(EncryptionKey, SecretBytes)> {
    let now = store::now();
    let data_key = envelope::generate_data_key();
    let mut row = EncryptionKey {
        id: EncryptionKeyId::new(),
        key_id: format!("dek-v{version}"),
        key_type: KeyType::DataEncryption,
        key_status: status,
        algorithm: "AES-256-GCM".into(),
        key_version: version,
        wrapped_key: Opaque(Vec::new()),
        wrap_nonce: Opaque(Vec::new()),
        master_key_id: provider.master_key_id(),
        encryption_count: 0,
        activated_at: (status == KeyStatus::Active).then_some(now),
        retired_at: None,
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    let sealed = provider.wrap(&data_key, &wrap_aad(&row))?;
    row.wrapped_key = Opaque(sealed.ciphertext);
    row.wrap_nonce = Opaque(sealed.nonce);
    Ok((row, data_key))
}

/// Re-wraps an existing data key row under another provider.
pub fn rewrap(
    row: &EncryptionKey,
    old: &dyn KeyProvider,
    new: &dyn KeyProvider,
) -> Result<(Vec<u8>, Vec<u8>, String)> {
    let loaded = unwrap_key(old, row)?;
    let sealed = new.wrap(&loaded.key, &wrap_aad(row))?;
    Ok((sealed.ciphertext, sealed.nonce, new.master_key_id()))
}

impl KeyRing {
    /// Loads every usable data key, creating the first one on a new database.
    /// A wrong master key fails here, with a clear error.
    pub async fn load(pool: &Pool, provider: Arc<dyn KeyProvider>) -> Result<KeyRing> {
        let mut tx = pool.begin().await?;
        let mut rows = encryption_keys::list_all(&mut tx.conn()).await?;
        if rows.is_empty() {
            let (row, _) = new_data_key(provider.as_ref(), 1, KeyStatus::Active)?;
            encryption_keys::insert(&mut tx.conn(), &row).await?;
            crate::service::audit::append(
                &mut tx.conn(),
                crate::store::audit::AuditLogKind::Secure,
                &crate::service::Actor::system(),
                crate::service::audit::AuditEntry::new("encryption_key.created", "create")
                    .resource("encryption_key", row.id)
                    .details(serde_json::json!({"key_id": row.key_id, "key_version": row.key_version, "master_key_id": row.master_key_id})),
            )
            .await?;
            rows.push(row);
        }
        tx.commit().await?;
        let state = Self::state_from_rows(&|_| Ok(provider.clone()), &rows)?;
        Ok(KeyRing {
            provider: RwLock::new(provider),
            incoming: RwLock::new(None),
            state: RwLock::new(state),
        })
    }

    fn state_from_rows(
        provider_for: &dyn Fn(&str) -> Result<Arc<dyn KeyProvider>>,
        rows: &[EncryptionKey],
    ) -> Result<RingState> {
        let mut keys = HashMap::new();
        let mut active = None;
        for row in rows
            .iter()
            .filter(|r| r.key_status != KeyStatus::Retired && r.deleted_at.is_none())
        {
            let provider = provider_for(&row.master_key_id)?;
            keys.insert(row.id, unwrap_key(provider.as_ref(), row)?);
            if row.key_status == KeyStatus::Active {
                active = Some(row.id);
            }
        }
        let active =
            active.ok_or_else(|| Error::Configuration("no active data-encryption key".into()))?;
        Ok(RingState { keys, active })
    }

    /// Re-reads the key rows (after a rotation, or another process's).
    pub async fn reload(&self, pool: &Pool) -> Result<()> {
        let mut conn = pool.acquire().await?;
        self.reload_on(&mut conn.conn()).await
    }

    /// [`KeyRing::reload`] on a connection the caller holds (a writer inside
    /// its transaction sees the key rows as that transaction does).
    pub async fn reload_on(&self, conn: &mut crate::db::Conn<'_>) -> Result<()> {
        let rows = encryption_keys::list_all(conn).await?;
        let state = Self::state_from_rows(&|id| self.provider_for(id), &rows)?;
        *self.state.write().map_err(|_| poisoned())? = state;
        Ok(())
    }

    /// The master key provider in use.
    pub fn provider(&self) -> Result<Arc<dyn KeyProvider>> {
        Ok(self.provider.read().map_err(|_| poisoned())?.clone())
    }

    /// Switches to another master key provider (master key rotation, once
    /// every data key is rewrapped under it).
    pub fn set_provider(&self, provider: Arc<dyn KeyProvider>) -> Result<()> {
        *self.provider.write().map_err(|_| poisoned())? = provider;
        self.expect_provider(None)
    }

    /// Names the master key a rotation is about to commit the data keys
    /// under (None: the rotation is over or failed), so a reload between
    /// its commit and [`KeyRing::set_provider`] opens the rewrapped rows.
    pub fn expect_provider(&self, provider: Option<Arc<dyn KeyProvider>>) -> Result<()> {
        *self.incoming.write().map_err(|_| poisoned())? = provider;
        Ok(())
    }

    /// The provider for a row wrapped under `master_key_id`: the current
    /// one, or the incoming one of a rotation when that is the one named
    /// (anything else fails in `unwrap_key`, naming both keys).
    pub(crate) fn provider_for(&self, master_key_id: &str) -> Result<Arc<dyn KeyProvider>> {
        let current = self.provider()?;
        if current.master_key_id() != master_key_id
            && let Some(incoming) = self.incoming.read().map_err(|_| poisoned())?.as_ref()
            && incoming.master_key_id() == master_key_id
        {
            return Ok(incoming.clone());
        }
        Ok(current)
    }

    /// Whether `key_id` is loaded (a usable, non-retired key this ring knows).
    pub fn holds(&self, key_id: EncryptionKeyId) -> Result<bool> {
        Ok(self
            .state
            .read()
            .map_err(|_| poisoned())?
            .keys
            .contains_key(&key_id))
    }

    /// The data key new secrets are sealed under.
    pub fn active_key_id(&self) -> Result<EncryptionKeyId> {
        Ok(self.state.read().map_err(|_| poisoned())?.active)
    }

    /// Seals under the active key. The key's id joins the associated data.
    pub fn seal(&self, plaintext: &[u8], aad_parts: &[&str]) -> Result<(EncryptionKeyId, Sealed)> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let key = state
            .keys
            .get(&state.active)
            .ok_or_else(|| Error::Internal("active data key is not loaded".into()))?;
        let sealed = envelope::seal(
            &key.key,
            key.version,
            plaintext,
            &full_aad(state.active, aad_parts),
        )?;
        Ok((state.active, sealed))
    }

    /// Seals under a specific loaded key (rotation re-seals under the new key).
    pub fn seal_with(
        &self,
        key_id: EncryptionKeyId,
        plaintext: &[u8],
        aad_parts: &[&str],
    ) -> Result<Sealed> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let key = state
            .keys
            .get(&key_id)
            .ok_or_else(|| Error::crypto(format!("data key {key_id} is not loaded")))?;
        envelope::seal(
            &key.key,
            key.version,
            plaintext,
            &full_aad(key_id, aad_parts),
        )
    }

    /// Opens a value sealed under `key_id`. An unknown key id is an explicit
    /// error, never a fallback to another key.
    pub fn open(
        &self,
        key_id: EncryptionKeyId,
        sealed: &Sealed,
        aad_parts: &[&str],
    ) -> Result<SecretBytes> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let key = state.keys.get(&key_id).ok_or_else(|| {
            Error::crypto(format!(
                "data key {key_id} is unknown or retired; reload the key ring"
            ))
        })?;
        envelope::open(&key.key, key.version, sealed, &full_aad(key_id, aad_parts))
    }
}

/// Associated data binding a sealed private key to its certificate row.
pub(crate) fn private_key_aad(certificate_id: CertificateId) -> [String; 3] {
    [
        "private_keys".into(),
        "encrypted_key_material".into(),
        certificate_id.to_string(),
    ]
}

/// Associated data binding a sealed MFA secret to its user row.
pub(crate) fn mfa_aad(user_id: UserId) -> [String; 3] {
    ["users".into(), "mfa_secret".into(), user_id.to_string()]
}

fn full_aad(key_id: EncryptionKeyId, parts: &[&str]) -> Vec<u8> {
    let key_text = key_id.to_string();
    let mut all: Vec<&str> = parts.to_vec();
    all.push(&key_text);
    envelope::aad(&all)
}

fn poisoned() -> Error {
    Error::Internal("key ring lock poisoned".into())
}

impl KeyRing {
    /// Opens a value sealed under `from` and seals it again under `to` with
    /// the same associated data, under one read lock (rotation). The
    /// plaintext stays in a zeroizing buffer inside this call.
    pub fn reseal(
        &self,
        from: EncryptionKeyId,
        to: EncryptionKeyId,
        sealed: &Sealed,
        aad_parts: &[&str],
    ) -> Result<Sealed> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let old = state.keys.get(&from).ok_or_else(|| {
            Error::crypto(format!(
                "data key {from} is unknown or retired; reload the key ring"
            ))
        })?;
        let new = state
            .keys
            .get(&to)
            .ok_or_else(|| Error::crypto(format!("data key {to} is not loaded")))?;
        reseal_between(from, old, to, new, sealed, aad_parts)
    }

    /// Unwraps a retired data key from its row for repair only: the ring
    /// never opens or seals with a retired key, but something found sealed
    /// under one (see `service::rotation`) must still be re-sealed, so the
    /// wrapped key stays in its row and is unwrapped here on demand.
    pub fn detach(&self, row: &EncryptionKey) -> Result<DetachedKey> {
        let provider = self.provider_for(&row.master_key_id)?;
        Ok(DetachedKey {
            id: row.id,
            key: unwrap_key(provider.as_ref(), row)?,
        })
    }

    /// [`KeyRing::reseal`] from a detached (retired) key to a loaded one.
    pub fn reseal_detached(
        &self,
        from: &DetachedKey,
        to: EncryptionKeyId,
        sealed: &Sealed,
        aad_parts: &[&str],
    ) -> Result<Sealed> {
        let state = self.state.read().map_err(|_| poisoned())?;
        let new = state
            .keys
            .get(&to)
            .ok_or_else(|| Error::crypto(format!("data key {to} is not loaded")))?;
        reseal_between(from.id, &from.key, to, new, sealed, aad_parts)
    }
}

/// A retired data key unwrapped for repair (see [`KeyRing::detach`]); the
/// key material is zeroized when dropped.
pub struct DetachedKey {
    id: EncryptionKeyId,
    key: LoadedKey,
}

impl DetachedKey {
    /// The `encryption_keys` row this key came from.
    pub fn id(&self) -> EncryptionKeyId {
        self.id
    }
}

impl std::fmt::Debug for DetachedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DetachedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Opens under `old` and seals under `new` with the same associated data; the
/// plaintext stays in a zeroizing buffer inside this call.
fn reseal_between(
    from: EncryptionKeyId,
    old: &LoadedKey,
    to: EncryptionKeyId,
    new: &LoadedKey,
    sealed: &Sealed,
    aad_parts: &[&str],
) -> Result<Sealed> {
    let plaintext = envelope::open(&old.key, old.version, sealed, &full_aad(from, aad_parts))?;
    envelope::seal(
        &new.key,
        new.version,
        plaintext.expose(),
        &full_aad(to, aad_parts),
    )
}
