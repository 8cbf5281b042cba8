//! Shared test support: run a body on SQLite (temp dir) and on PostgreSQL
//! (a fresh, uniquely named database pair, dropped afterwards), plus record
//! fixtures with sensible defaults.
//!
//! PostgreSQL comes from `CLM_TEST_PG_URL` (default `postgres://postgres@127.0.0.1:5432`).
//! When it is unreachable the PostgreSQL half is skipped loudly, or fails when `CI` is set.
#![allow(dead_code)]

pub mod invariants;
pub mod pg_cluster;
pub mod small_disk;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use chrono::Duration as Days;
use clm::db::{Conn, Databases, Dialect};
use clm::model::*;
use clm::store::{Value, now};
use clm::{Clm, ClmConfig};
use futures::FutureExt;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgPool};

pub fn pg_base_url() -> String {
    std::env::var("CLM_TEST_PG_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".to_string())
        .trim_end_matches('/')
        .to_string()
}

/// A database pair created for one test; [`PgTestDb::drop_all`] removes it.
pub struct PgTestDb {
    admin: PgPool,
    pub secure_name: String,
    pub core_name: String,
    base: String,
}

impl PgTestDb {
    /// Creates `clm_test_<uuid>_secure` and `_core`. None (after a loud
    /// message) when PostgreSQL is unreachable and `CI` is not set.
    pub async fn create() -> Option<PgTestDb> {
        let base = pg_base_url();
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&format!("{base}/postgres"))
            .await;
        let admin = match admin {
            Ok(pool) => pool,
            Err(err) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL at {base} is unreachable and CI is set: {err}");
                }
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !!! SKIPPING the PostgreSQL half of this test: {base} unreachable ({err})\n\
                     !!! set CLM_TEST_PG_URL, or CI=1 to make this a failure\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
                return None;
            }
        };
        let stem = format!("clm_test_{}", uuid::Uuid::new_v4().simple());
        let db = PgTestDb {
            admin,
            secure_name: format!("{stem}_secure"),
            core_name: format!("{stem}_core"),
            base,
        };
        for name in [&db.secure_name, &db.core_name] {
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&db.admin)
                .await
                .expect("CREATE DATABASE");
        }
        Some(db)
    }

    pub fn secure_url(&self) -> String {
        format!("{}/{}", self.base, self.secure_name)
    }

    pub fn core_url(&self) -> String {
        format!("{}/{}", self.base, self.core_name)
    }

    pub fn config(&self) -> ClmConfig {
        ClmConfig::postgres(self.secure_url(), self.core_url()).with_max_connections(4)
    }

    pub async fn drop_all(self) {
        for name in [&self.secure_name, &self.core_name] {
            if let Err(err) = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&self.admin)
            .await
            {
                eprintln!("warning: could not drop test database {name}: {err}");
            }
        }
        self.admin.close().await;
    }
}

/// Runs `body` on SQLite, then on PostgreSQL, with both databases migrated
/// and empty: repository tests see the bare schema, without the key ring and
/// the built-in roles `Clm::open` adds. The PostgreSQL databases are dropped
/// whether the body passes or panics.
pub async fn on_both<F, Fut>(body: F)
where
    F: Fn(Databases) -> Fut,
    Fut: Future<Output = ()>,
{
    on_sqlite(&body).await;
    on_postgres(&body).await;
}

/// Opens (creating and migrating) the two databases of `config`.
pub async fn open_databases(config: &ClmConfig) -> Databases {
    clm::db::connect(&config.database, &config.database_tls, config.pool)
        .await
        .expect("open databases")
}

pub async fn on_sqlite<F, Fut>(body: &F)
where
    F: Fn(Databases) -> Fut,
    Fut: Future<Output = ()>,
{
    eprintln!("--- backend: sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_databases(&ClmConfig::sqlite(dir.path()).with_max_connections(4)).await;
    body(db.clone()).await;
    db.close().await;
}

/// Runs `body` on a fresh PostgreSQL pair; returns false when skipped.
pub async fn on_postgres<F, Fut>(body: &F) -> bool
where
    F: Fn(Databases) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(pg) = PgTestDb::create().await else {
        return false;
    };
    eprintln!("--- backend: postgres ({})", pg.secure_name);
    let outcome = AssertUnwindSafe(async {
        let db = open_databases(&pg.config()).await;
        let result = AssertUnwindSafe(body(db.clone())).catch_unwind().await;
        db.close().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    })
    .catch_unwind()
    .await;
    pg.drop_all().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    true
}

/// Executes raw SQL (with `$n` binds) on either backend.
pub async fn raw(conn: &mut Conn<'_>, sql: &str, values: Vec<Value>) -> clm::Result<u64> {
    let sql = sql.to_string();
    Ok(clm::on_conn!(conn, |c| clm::bind_values!(
        sqlx::query(AssertSqlSafe(sql)),
        &values
    )
    .execute(&mut *c)
    .await
    .map(|done| done.rows_affected()))?)
}

/// The plan of `sql` with `values` bound, one line per plan node:
/// `EXPLAIN` on PostgreSQL, `EXPLAIN QUERY PLAN` (its detail column) on SQLite.
pub async fn query_plan(conn: &mut Conn<'_>, sql: &str, values: Vec<Value>) -> String {
    let lines: Vec<String> = match conn {
        Conn::Postgres(c) => clm::bind_values!(
            sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("EXPLAIN {sql}"))),
            &values
        )
        .fetch_all(&mut **c)
        .await
        .unwrap_or_else(|err| panic!("EXPLAIN {sql}: {err}")),
        Conn::Sqlite(c) => {
            let rows: Vec<(i64, i64, i64, String)> = clm::bind_values!(
                sqlx::query_as(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}"))),
                &values
            )
            .fetch_all(&mut **c)
            .await
            .unwrap_or_else(|err| panic!("EXPLAIN QUERY PLAN {sql}: {err}"));
            rows.into_iter().map(|(_, _, _, detail)| detail).collect()
        }
    };
    lines.join("\n")
}

pub fn dialect(db: &Databases) -> Dialect {
    db.dialect()
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

pub fn hex64() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

// ------------------------------------------------------------------ fixtures

pub fn user(username: &str) -> User {
    let at = now();
    User {
        id: UserId::new(),
        username: username.to_string(),
        email: format!("{}@example.com", username.to_lowercase()),
        display_name: Some(format!("User {username}")),
        status: UserStatus::Active,
        password_hash: None,
        mfa_enabled: false,
        mfa_secret: None,
        mfa_secret_nonce: None,
        mfa_encryption_key_id: None,
        mfa_last_used_step: None,
        failed_login_attempts: 0,
        locked_until: None,
        last_login_at: None,
        password_changed_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn organization(code: &str) -> Organization {
    let at = now();
    Organization {
        id: OrganizationId::new(),
        org_code: code.to_string(),
        name: format!("Org {code}"),
        description: None,
        status: OrganizationStatus::Active,
        parent_organization_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn role(code: &str) -> Role {
    let at = now();
    Role {
        id: RoleId::new(),
        role_code: code.to_string(),
        role_name: format!("Role {code}"),
        description: None,
        permissions: Json(Permissions::from_pairs(&[(
            "certificates",
            &["read", "create"],
        )])),
        is_builtin: false,
        organization_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn grant(user_id: UserId, role_id: RoleId) -> UserRole {
    let at = now();
    UserRole {
        id: UserRoleId::new(),
        user_id,
        role_id,
        granted_by_user_id: None,
        granted_at: at,
        revoked_at: None,
        revoked_by_user_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn membership(user_id: UserId, organization_id: OrganizationId) -> UserOrganization {
    let at = now();
    UserOrganization {
        id: UserOrganizationId::new(),
        user_id,
        organization_id,
        membership_role: "member".into(),
        joined_at: at,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn policy(code: &str) -> Policy {
    let at = now();
    Policy {
        id: PolicyId::new(),
        policy_code: code.to_string(),
        name: format!("Policy {code}"),
        description: None,
        policy_rules: Json(PolicyRules::default()),
        status: PolicyStatus::Active,
        version: 1,
        organization_id: None,
        workflow_id: None,
        created_by_user_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn workflow(code: &str) -> Workflow {
    let at = now();
    Workflow {
        id: WorkflowId::new(),
        workflow_code: code.to_string(),
        name: format!("Workflow {code}"),
        description: None,
        workflow_definition: Json(
            WorkflowDefinition::parse(
                r#"{"steps":[{"step_id":1,"type":"validation"},{"step_id":2,"type":"approval","approvers":["role:APPROVER"]}]}"#,
            )
            .expect("definition"),
        ),
        status: WorkflowDefinitionStatus::Active,
        version: 1,
        is_default: false,
        organization_id: None,
        created_by_user_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn instance(workflow_id: WorkflowId, status: WorkflowStatus) -> WorkflowInstance {
    let at = now();
    WorkflowInstance {
        id: WorkflowInstanceId::new(),
        workflow_id,
        workflow_version: 1,
        status,
        subject_type: "certificate_request".into(),
        subject_id: ResourceId::new(),
        requested_by_user_id: None,
        organization_id: None,
        current_step_order: 0,
        certificate_id: None,
        error_message: None,
        expires_at: Some(at + Days::hours(48)),
        started_at: at,
        completed_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn step(instance_id: WorkflowInstanceId, step_id: i32, step_type: StepType) -> WorkflowStep {
    let at = now();
    WorkflowStep {
        id: WorkflowStepId::new(),
        workflow_instance_id: instance_id,
        step_id,
        step_order: step_id,
        step_type,
        name: Some(format!("step {step_id}")),
        status: WorkflowStatus::Initiated,
        assigned_to_user_id: None,
        assigned_to_role_id: None,
        required_approvals: 1,
        approvals: Json(Vec::new()),
        acted_by_user_id: None,
        decision_comment: None,
        started_at: None,
        completed_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn notification(user_id: UserId, dedup_key: Option<&str>) -> Notification {
    let at = now();
    Notification {
        id: NotificationId::new(),
        user_id,
        notification_type: NotificationType::CertificateExpiring,
        priority: NotificationPriority::Normal,
        title: "Certificate expiring".into(),
        message: "www.example.com expires in 7 days".into(),
        resource_type: Some("certificate".into()),
        resource_id: Some(ResourceId::new()),
        dedup_key: dedup_key.map(str::to_string),
        is_read: false,
        read_at: None,
        delivered_at: None,
        delivery_attempts: 0,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn api_key(user_id: UserId) -> ApiKey {
    let at = now();
    ApiKey {
        id: ApiKeyId::new(),
        key_id: unique("kid"),
        key_hash: OpaqueText(hex64()),
        name: "ci".into(),
        user_id,
        organization_id: None,
        scopes: Json(Permissions::from_pairs(&[("certificates", &["read"])])),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        revoked_by_user_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn session(user_id: UserId, expires_in: Days) -> Session {
    let at = now();
    Session {
        id: SessionId::new(),
        session_id: unique("sid"),
        token_hash: OpaqueText(hex64()),
        user_id,
        ip_address: Some("192.0.2.1".into()),
        user_agent: Some("test".into()),
        expires_at: at + expires_in,
        idle_timeout_secs: 1800,
        last_activity_at: at,
        revoked_at: None,
        revoke_reason: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn metadata(certificate_id: CertificateId) -> CertificateMetadata {
    let at = now();
    CertificateMetadata {
        id: CertificateMetadataId::new(),
        certificate_id,
        common_name: Some("www.example.com".into()),
        not_after: Some(at + Days::days(90)),
        owner_user_id: None,
        organization_id: None,
        environment: Some("prod".into()),
        application: Some("web".into()),
        tags: Json(serde_json::Map::new()),
        notes: None,
        last_notified_threshold: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn certificate(common_name: &str, not_after: Timestamp) -> Certificate {
    let at = now();
    let serial = hex64()[..32].to_string();
    Certificate {
        id: CertificateId::new(),
        certificate_id: unique("cert"),
        common_name: Some(common_name.to_string()),
        subject_dn: format!("CN={common_name}"),
        issuer_dn: "CN=Test Issuing CA".into(),
        serial_number_signed: serial.clone().into(),
        serial_number: serial,
        not_before: not_after - Days::days(365),
        not_after,
        status: CertificateStatus::Active,
        fingerprint_sha256: hex64(),
        key_algorithm: "ECDSA".into(),
        key_size: 256,
        signature_algorithm: "ecdsa-with-SHA256".into(),
        is_ca: false,
        path_len: None,
        certificate_kind: CertificateKind::TlsServer,
        source: CertificateSource::Imported,
        issuer_certificate_id: None,
        replaces_certificate_id: None,
        subject_key_id: None,
        authority_key_id: None,
        subject_alternative_names: Json(vec![SubjectAlternativeName::Dns(common_name.to_string())]),
        import_flags: Json(Vec::new()),
        certificate_pem: format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            hex64()
        ),
        owner_user_id: None,
        organization_id: None,
        policy_id: None,
        policy_version: None,
        workflow_id: None,
        crl_number: 0,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn encryption_key(version: i32, status: KeyStatus) -> EncryptionKey {
    let at = now();
    EncryptionKey {
        id: EncryptionKeyId::new(),
        key_id: unique("dek"),
        key_type: KeyType::DataEncryption,
        key_status: status,
        algorithm: "AES-256-GCM".into(),
        key_version: version,
        wrapped_key: Opaque(vec![7; 48]),
        wrap_nonce: Opaque(vec![1; 12]),
        master_key_id: "master-1".into(),
        encryption_count: 0,
        activated_at: Some(at),
        retired_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn private_key(
    certificate_id: CertificateId,
    encryption_key_id: EncryptionKeyId,
) -> PrivateKeyRecord {
    let at = now();
    PrivateKeyRecord {
        id: PrivateKeyId::new(),
        certificate_id,
        encryption_key_id,
        encrypted_key_material: Opaque(vec![9; 64]),
        nonce: Opaque(vec![2; 12]),
        key_algorithm: "ECDSA".into(),
        key_size: 256,
        public_key_sha256: hex64(),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn request(common_name: &str) -> CertificateRequest {
    let at = now();
    CertificateRequest {
        id: CertificateRequestId::new(),
        request_id: unique("req"),
        csr_pem: None,
        common_name: Some(common_name.into()),
        subject_dn: format!("CN={common_name}"),
        subject_alternative_names: Json(vec![SubjectAlternativeName::Dns(common_name.into())]),
        key_algorithm: "ECDSA".into(),
        key_size: 256,
        certificate_kind: CertificateKind::TlsServer,
        validity_days: 90,
        status: RequestStatus::Pending,
        issuer_certificate_id: None,
        certificate_id: None,
        renewal_of_certificate_id: None,
        reuse_key: false,
        requested_by_user_id: None,
        owner_user_id: None,
        organization_id: None,
        policy_id: None,
        workflow_instance_id: None,
        failure_reason: None,
        expires_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn revocation(certificate: &Certificate, reason: RevocationReason) -> CertificateRevocation {
    let at = now();
    CertificateRevocation {
        id: RevocationId::new(),
        certificate_id: certificate.id,
        issuer_certificate_id: certificate.issuer_certificate_id,
        serial_number: certificate.serial_number.clone(),
        serial_number_signed: certificate.serial_number_signed.clone(),
        revocation_reason: reason,
        revoked_at: at,
        revoked_by_user_id: None,
        comment: None,
        released_at: None,
        released_by_user_id: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn rotation(old: Option<EncryptionKeyId>, new: Option<EncryptionKeyId>) -> KeyRotation {
    let at = now();
    KeyRotation {
        id: KeyRotationId::new(),
        rotation_type: RotationType::DataKey,
        old_key_id: old,
        new_key_id: new,
        old_master_key_id: None,
        new_master_key_id: None,
        status: RotationStatus::InProgress,
        total_items: 10,
        rotated_items: 0,
        last_item_id: None,
        error_message: None,
        initiated_by_user_id: None,
        started_at: at,
        completed_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

pub fn audit_event(sequence_number: i64, resource_id: Option<ResourceId>) -> AuditEvent {
    let at = now();
    AuditEvent {
        id: AuditId::new(),
        sequence_number,
        event_type: "certificate.issue".into(),
        action: "issue".into(),
        outcome: AuditOutcome::Success,
        actor_type: ActorType::User,
        user_id: Some(UserId::new()),
        api_key_id: None,
        organization_id: None,
        resource_type: Some("certificate".into()),
        resource_id,
        details: Json(serde_json::json!({"n": sequence_number})),
        event_timestamp: at,
        previous_hash: format!("h{}", sequence_number - 1),
        row_hash: format!("h{sequence_number}"),
        created_at: at,
    }
}

// ------------------------------------------------- opening with a master key

/// A fixed test master key (base64 of 32 bytes of `byte`).
pub fn master_key(byte: u8) -> clm::MasterKeySource {
    use base64::Engine;
    clm::MasterKeySource::Base64(base64::engine::general_purpose::STANDARD.encode([byte; 32]))
}

/// The master key every keyed test opens with.
pub fn test_master_key() -> clm::MasterKeySource {
    master_key(0x42)
}

/// Runs `body` with a bare config (no master key) for SQLite (temp dir), then
/// for a fresh PostgreSQL pair; the body opens and closes `Clm` itself. The
/// PostgreSQL databases are dropped whether the body passes or panics.
pub async fn on_both_configs<F, Fut>(body: F)
where
    F: Fn(ClmConfig) -> Fut,
    Fut: Future<Output = ()>,
{
    eprintln!("--- backend: sqlite");
    let dir = tempfile::tempdir().expect("tempdir");
    body(ClmConfig::sqlite(dir.path()).with_max_connections(4)).await;
    drop(dir);
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    eprintln!("--- backend: postgres ({})", db.secure_name);
    let outcome = AssertUnwindSafe(body(db.config())).catch_unwind().await;
    db.drop_all().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `body` on both backends with a `Clm` opened with the test master key
/// and `security`; the handle is closed afterwards.
pub async fn on_both_keyed<F, Fut>(security: clm::SecuritySettings, body: F)
where
    F: Fn(Clm) -> Fut,
    Fut: Future<Output = ()>,
{
    let body = &body;
    on_both_configs(|config| async move {
        let clm = Clm::open(
            config
                .with_master_key(test_master_key())
                .with_security(security),
        )
        .await
        .expect("open with master key");
        let result = AssertUnwindSafe(body(clm.clone())).catch_unwind().await;
        clm.close().await;
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    })
    .await;
}

/// `n` certificates of `ca`, each with a standing revocation, written with
/// bulk inserts around the API (for CRLs at scale): certificate rows by the
/// store's multi-row insert in chunks, then one INSERT ... SELECT for their
/// revocations (the certificate's id doubles as the revocation's). Serials
/// are random and positive, as issuance makes them.
pub async fn revoke_in_bulk(clm: &Clm, ca: CertificateId, n: usize) {
    const CHUNK: usize = 5_000;
    let t = now();
    let mut done = 0;
    while done < n {
        let size = CHUNK.min(n - done);
        let certs: Vec<_> = (0..size)
            .map(|i| {
                let mut cert =
                    certificate(&format!("host{}.example.com", done + i), t + Days::days(90));
                cert.issuer_certificate_id = Some(ca);
                cert.serial_number = hex::encode(clm::crypto::random_serial());
                cert
            })
            .collect();
        let mut tx = clm.databases().secure.begin().await.expect("begin");
        clm::store::certificates::insert_many(&mut tx.conn(), &certs)
            .await
            .expect("certificates");
        tx.commit().await.expect("commit");
        done += size;
    }
    let mut tx = clm.databases().secure.begin().await.expect("begin");
    let revoked = raw(
        &mut tx.conn(),
        "INSERT INTO certificate_revocations (id, certificate_id, issuer_certificate_id,
            serial_number, revocation_reason, revoked_at, created_at, updated_at)
         SELECT id, id, issuer_certificate_id, serial_number, 'superseded', $2, $2, $2
           FROM certificates WHERE issuer_certificate_id = $1
             AND NOT EXISTS (SELECT 1 FROM certificate_revocations r WHERE r.certificate_id = certificates.id)",
        vec![Value::Id(ResourceId(ca.as_uuid())), Value::Time(t)],
    )
    .await
    .expect("revocations");
    tx.commit().await.expect("commit");
    assert_eq!(revoked, n as u64);
}
