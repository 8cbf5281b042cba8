//! What must hold in the two databases after any fault (a killed server,
//! dropped connections, several processes at once), checked through the
//! pools (written for PostgreSQL; the SQL is portable) once `reconcile` (and any resumed rotation) ran:
//!
//! - every live certificate has its metadata row in core, and no metadata
//!   row names a certificate that does not exist;
//! - every private key belongs to a certificate and none is sealed under a
//!   retired data key (nor is any MFA secret); exactly one data key is active;
//! - serials are unique per issuer, no certificate is renewed twice;
//! - every issued request names its certificate, and no certificate answers
//!   two requests or two workflow instances;
//! - CRL numbers are unique per issuer and never above the issuer's counter;
//! - both audit chains verify.
//!
//! Written for the cluster tests (issue 17) while the failpoint tests grow
//! their own checker; the two are meant to become one.

use std::collections::BTreeSet;

use clm::Clm;
use clm::db::Pool;
use clm::model::CertificateId;
use clm::store::audit::AuditLogKind;

/// Counts seen while checking, for the tests' reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct InvariantCounts {
    pub certificates: usize,
    pub private_keys: i64,
    pub crls: i64,
    pub secure_audit_rows: u64,
    pub core_audit_rows: u64,
}

async fn texts(pool: &Pool, sql: &str) -> Vec<String> {
    let mut pooled = pool
        .acquire()
        .await
        .expect("a connection for the invariant check");
    let sql = sql.to_string();
    clm::on_conn!(&mut pooled.conn(), |c| sqlx::query_scalar::<_, String>(
        sqlx::AssertSqlSafe(sql.clone())
    )
    .fetch_all(&mut *c)
    .await)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

async fn count(pool: &Pool, sql: &str) -> i64 {
    let mut pooled = pool
        .acquire()
        .await
        .expect("a connection for the invariant check");
    let sql = sql.to_string();
    clm::on_conn!(&mut pooled.conn(), |c| sqlx::query_scalar::<_, i64>(
        sqlx::AssertSqlSafe(sql.clone())
    )
    .fetch_one(&mut *c)
    .await)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// `sql` counts violations: it must find none.
async fn none(pool: &Pool, what: &str, sql: &str) {
    let found = count(pool, sql).await;
    assert_eq!(
        found, 0,
        "invariant broken: {what} ({found} found by {sql})"
    );
}

/// Checks every invariant above; panics naming the first broken one.
pub async fn assert_invariants(clm: &Clm) -> InvariantCounts {
    let db = clm.databases();
    let certificates: BTreeSet<String> = texts(
        &db.secure,
        "SELECT CAST(id AS TEXT) FROM certificates WHERE deleted_at IS NULL",
    )
    .await
    .into_iter()
    .collect();
    let all_certificates: BTreeSet<String> =
        texts(&db.secure, "SELECT CAST(id AS TEXT) FROM certificates")
            .await
            .into_iter()
            .collect();
    let metadata: BTreeSet<String> = texts(
        &db.core,
        "SELECT CAST(certificate_id AS TEXT) FROM certificate_metadata",
    )
    .await
    .into_iter()
    .collect();
    let without_metadata: Vec<_> = certificates.difference(&metadata).collect();
    assert!(
        without_metadata.is_empty(),
        "invariant broken: live certificates without metadata: {without_metadata:?}"
    );
    let orphans: Vec<_> = metadata.difference(&all_certificates).collect();
    assert!(
        orphans.is_empty(),
        "invariant broken: metadata of certificates that do not exist: {orphans:?}"
    );

    none(
        &db.secure,
        "private keys without their certificate",
        "SELECT COUNT(*) FROM private_keys p LEFT JOIN certificates c ON c.id = p.certificate_id \
         WHERE c.id IS NULL",
    )
    .await;
    none(
        &db.secure,
        "private keys sealed under a retired data key",
        "SELECT COUNT(*) FROM private_keys p JOIN encryption_keys k ON k.id = p.encryption_key_id \
         WHERE k.key_status = 'retired' AND p.deleted_at IS NULL",
    )
    .await;
    let active_keys = count(
        &db.secure,
        "SELECT COUNT(*) FROM encryption_keys WHERE key_status = 'active' AND deleted_at IS NULL",
    )
    .await;
    assert_eq!(active_keys, 1, "invariant broken: active data keys");
    let retired = texts(
        &db.secure,
        "SELECT CAST(id AS TEXT) FROM encryption_keys WHERE key_status = 'retired'",
    )
    .await;
    let mfa_keys = texts(
        &db.core,
        "SELECT CAST(mfa_encryption_key_id AS TEXT) FROM users \
         WHERE mfa_encryption_key_id IS NOT NULL",
    )
    .await;
    let sealed_retired: Vec<_> = mfa_keys.iter().filter(|k| retired.contains(k)).collect();
    assert!(
        sealed_retired.is_empty(),
        "invariant broken: MFA secrets sealed under retired data keys {sealed_retired:?}"
    );

    none(
        &db.secure,
        "a serial issued twice by one issuer",
        "SELECT COUNT(*) FROM (SELECT issuer_certificate_id, serial_number FROM certificates \
         WHERE source = 'issued' GROUP BY issuer_certificate_id, serial_number \
         HAVING COUNT(*) > 1) twice",
    )
    .await;
    none(
        &db.secure,
        "a certificate renewed twice",
        "SELECT COUNT(*) FROM (SELECT replaces_certificate_id FROM certificates \
         WHERE replaces_certificate_id IS NOT NULL AND deleted_at IS NULL \
         GROUP BY replaces_certificate_id HAVING COUNT(*) > 1) twice",
    )
    .await;
    none(
        &db.secure,
        "an issued request without its certificate",
        "SELECT COUNT(*) FROM certificate_requests WHERE status = 'issued' \
         AND (certificate_id IS NULL \
              OR certificate_id NOT IN (SELECT id FROM certificates))",
    )
    .await;
    none(
        &db.secure,
        "one certificate for two requests",
        "SELECT COUNT(*) FROM (SELECT certificate_id FROM certificate_requests \
         WHERE certificate_id IS NOT NULL GROUP BY certificate_id HAVING COUNT(*) > 1) twice",
    )
    .await;
    none(
        &db.core,
        "one certificate for two workflow instances",
        "SELECT COUNT(*) FROM (SELECT certificate_id FROM workflow_instances \
         WHERE certificate_id IS NOT NULL GROUP BY certificate_id HAVING COUNT(*) > 1) twice",
    )
    .await;
    let completed_without = texts(
        &db.core,
        "SELECT CAST(certificate_id AS TEXT) FROM workflow_instances \
         WHERE status = 'completed' AND certificate_id IS NOT NULL",
    )
    .await;
    let missing: Vec<_> = completed_without
        .iter()
        .filter(|id| !all_certificates.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "invariant broken: completed workflow instances naming missing certificates {missing:?}"
    );

    none(
        &db.secure,
        "a CRL number used twice by one issuer",
        "SELECT COUNT(*) FROM (SELECT issuer_certificate_id, crl_number FROM crls \
         GROUP BY issuer_certificate_id, crl_number HAVING COUNT(*) > 1) twice",
    )
    .await;
    none(
        &db.secure,
        "a stored CRL numbered above its issuer's counter",
        "SELECT COUNT(*) FROM crls r JOIN certificates ca ON ca.id = r.issuer_certificate_id \
         WHERE r.crl_number > ca.crl_number",
    )
    .await;

    let system = clm.system_actor();
    let mut audit_rows = [0u64; 2];
    for (slot, kind) in [AuditLogKind::Secure, AuditLogKind::Core]
        .into_iter()
        .enumerate()
    {
        let report = clm
            .verify_audit_chain(&system, kind)
            .await
            .unwrap_or_else(|err| panic!("verify the {kind:?} audit chain: {err}"));
        assert!(
            report.broken.is_none(),
            "invariant broken: the {} chain: {:?}",
            report.log,
            report.broken
        );
        audit_rows[slot] = report.rows_checked;
    }

    InvariantCounts {
        certificates: certificates.len(),
        private_keys: count(&db.secure, "SELECT COUNT(*) FROM private_keys").await,
        crls: count(&db.secure, "SELECT COUNT(*) FROM crls").await,
        secure_audit_rows: audit_rows[0],
        core_audit_rows: audit_rows[1],
    }
}

/// Every certificate a caller was told was issued exists after the fault,
/// and its private key opens (exported through the API, as a host would).
pub async fn assert_issued_with_keys(clm: &Clm, ids: &[CertificateId]) {
    let system = clm.system_actor();
    for id in ids {
        let certificate = clm
            .get_certificate(&system, *id)
            .await
            .unwrap_or_else(|err| {
                panic!("false success: certificate {id} was returned as issued but is gone: {err}")
            });
        assert_eq!(certificate.id, *id);
        let key = clm
            .export_private_key(&system, *id)
            .await
            .unwrap_or_else(|err| {
                panic!("false success: certificate {id} has no usable key: {err}")
            });
        assert!(
            key.expose().contains("PRIVATE KEY"),
            "certificate {id}: not a key"
        );
    }
}
