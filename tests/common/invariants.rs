//! The invariants every fault test must leave standing once `reconcile`
//! (or the interrupted operation run again, a resumed rotation) has run:
//! after a failpoint (tests/faults), a killed server, dropped connections
//! or several processes at once (tests/cluster). One checker for both:
//! [`assert_invariants`]; and [`assert_issued_with_keys`] for what callers
//! were told was issued.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use clm::crypto::envelope::Sealed;
use clm::crypto::{KeyPair, parse_certificates};
use clm::db::Conn;
use clm::keyring::KeyRing;
use clm::model::{CertificateId, CertificateRequestId, KeyStatus};
use clm::query::AuditLogKind;
use clm::service::audit::verify_chain;
use clm::store::certificates::Certificates;
use clm::store::{certificate_metadata, certificates, encryption_keys, private_keys, users};
use clm::{Clm, KeyProvider};

/// What the check saw, for the tests' own assertions and their logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Certificate rows (deleted included).
    pub certificates: usize,
    /// Private key rows, each opened and matched to its certificate.
    pub private_keys: usize,
    /// Requests in status `issued`.
    pub issued_requests: usize,
    /// Stored CRLs.
    pub crls: usize,
    /// Rows of the secure and the core audit chain that verified.
    pub secure_audit_rows: u64,
    /// Rows of the core audit chain that verified.
    pub core_audit_rows: u64,
}

/// Checks, on the handle's databases, with a key ring loaded afresh under
/// `master` (the master key the databases are wrapped under now):
/// - every private key row names a stored certificate, opens under a live
///   (not retired) data key with its row binding, and is that certificate's
///   key; every CA clm issued and every certificate issued with a key clm
///   generated (its request has no CSR) has its key;
/// - no private key and no MFA secret is sealed under a retired data key;
/// - every request in status `issued` names one stored certificate, no two
///   requests name the same one, and there are exactly as many certificates
///   issued through a workflow as issued requests that went through one
///   (one certificate per approved request);
/// - exactly one data key is active;
/// - serials are unique per issuer, and no certificate is renewed twice;
/// - no certificate answers two requests or two workflow instances, and a
///   completed instance names a stored certificate;
/// - each CA's CRL numbers are distinct and below or at its counter;
/// - both audit chains verify;
/// - every certificate has its metadata row, and no metadata row names a
///   certificate that is not stored.
///
/// Panics naming the first broken invariant.
pub async fn assert_invariants(clm: &Clm, master: &clm::MasterKeySource) -> Inventory {
    let mut seen = Inventory::default();
    let databases = clm.databases();
    let (provider, _) = master.resolve().expect("master key");
    let provider: Arc<dyn KeyProvider> = provider;
    let ring = KeyRing::load(&databases.secure, provider)
        .await
        .expect("a key ring loads under the master key");

    let mut secure = databases.secure.acquire().await.expect("secure connection");
    let mut core = databases.core.acquire().await.expect("core connection");

    // Certificates and their metadata.
    let mut all_certificates = Vec::new();
    let mut after = None;
    loop {
        let batch = certificates::ids_after(&mut secure.conn(), after, 500)
            .await
            .expect("certificate ids");
        let Some(last) = batch.last() else { break };
        after = Some(*last);
        let present = certificate_metadata::existing_certificate_ids(&mut core.conn(), &batch)
            .await
            .expect("metadata ids");
        for id in &batch {
            assert!(
                present.contains(id),
                "certificate {id} has no certificate_metadata row (reconcile did not repair it)"
            );
        }
        all_certificates.extend(batch);
    }
    seen.certificates = all_certificates.len();
    let stored: BTreeSet<CertificateId> = all_certificates.iter().copied().collect();
    let metadata_of: Vec<CertificateId> = scalars(
        &mut core.conn(),
        "SELECT certificate_id FROM certificate_metadata",
    )
    .await;
    for id in &metadata_of {
        assert!(
            stored.contains(id),
            "certificate_metadata names certificate {id}, which is not stored"
        );
    }

    // Private keys: every one opens, under a live key, and fits its certificate.
    let data_keys = encryption_keys::list_all(&mut secure.conn())
        .await
        .expect("data keys");
    let mut with_key = BTreeSet::new();
    for data_key in &data_keys {
        let mut after = None;
        loop {
            let batch = private_keys::batch_sealed_by(&mut secure.conn(), data_key.id, after, 500)
                .await
                .expect("private keys");
            let Some(last) = batch.last() else { break };
            after = Some(last.id);
            for record in &batch {
                assert_ne!(
                    data_key.key_status,
                    KeyStatus::Retired,
                    "private key {} is sealed under retired data key {}",
                    record.id,
                    data_key.key_id
                );
                assert!(
                    stored.contains(&record.certificate_id),
                    "private key {} names certificate {}, which is not stored",
                    record.id,
                    record.certificate_id
                );
                let certificate_id = record.certificate_id.to_string();
                let aad = ["private_keys", "encrypted_key_material", &certificate_id];
                let der = ring
                    .open(
                        record.encryption_key_id,
                        &Sealed {
                            nonce: record.nonce.0.clone(),
                            ciphertext: record.encrypted_key_material.0.clone(),
                        },
                        &aad,
                    )
                    .unwrap_or_else(|err| {
                        panic!(
                            "private key {} (certificate {}) does not open: {err}",
                            record.id, record.certificate_id
                        )
                    });
                let key = KeyPair::from_der(der.expose()).expect("an opened key parses");
                let row = clm::store::get::<Certificates>(
                    &mut secure.conn(),
                    record.certificate_id,
                    true,
                )
                .await
                .expect("certificate of a key");
                let parsed = parse_certificates(row.certificate_pem.as_bytes())
                    .expect("stored PEM parses")
                    .into_iter()
                    .next()
                    .expect("one certificate");
                assert_eq!(
                    key.public_key_der(),
                    parsed.public_key_der,
                    "private key {} is not the key of certificate {}",
                    record.id,
                    record.certificate_id
                );
                assert!(
                    with_key.insert(record.certificate_id),
                    "certificate {} has two private keys",
                    record.certificate_id
                );
                seen.private_keys += 1;
            }
        }
        if data_key.key_status == KeyStatus::Retired {
            let mfa = users::count_mfa_sealed_by(&mut core.conn(), data_key.id)
                .await
                .expect("MFA count");
            assert_eq!(
                mfa, 0,
                "{mfa} MFA secrets are sealed under retired data key {}",
                data_key.key_id
            );
        }
    }
    let need_key: Vec<CertificateId> = scalars(
        &mut secure.conn(),
        "SELECT id FROM certificates WHERE source = 'issued' AND is_ca \
         UNION SELECT c.id FROM certificates c JOIN certificate_requests r \
         ON r.certificate_id = c.id WHERE r.csr_pem IS NULL AND NOT r.reuse_key",
    )
    .await;
    for id in need_key {
        assert!(
            with_key.contains(&id),
            "certificate {id} was issued with a key clm made, and its key is not stored"
        );
    }

    // One certificate per issued (approved) request.
    let issued: Vec<(CertificateRequestId, Option<CertificateId>, bool)> = on_conn_rows(
        &mut secure.conn(),
        "SELECT id, certificate_id, workflow_instance_id IS NOT NULL \
         FROM certificate_requests WHERE status = 'issued'",
    )
    .await;
    seen.issued_requests = issued.len();
    let mut named = BTreeSet::new();
    for (request, certificate, _) in &issued {
        let certificate =
            certificate.unwrap_or_else(|| panic!("issued request {request} names no certificate"));
        assert!(
            stored.contains(&certificate),
            "issued request {request} names certificate {certificate}, which is not stored"
        );
        assert!(
            named.insert(certificate),
            "two issued requests name certificate {certificate}"
        );
    }
    let approved_requests = issued.iter().filter(|(_, _, workflow)| *workflow).count();
    let through_workflows: Vec<CertificateId> = scalars(
        &mut secure.conn(),
        "SELECT id FROM certificates WHERE workflow_id IS NOT NULL",
    )
    .await;
    assert_eq!(
        through_workflows.len(),
        approved_requests,
        "certificates issued through a workflow vs issued requests that were approved"
    );

    // Uniqueness the schema does not enforce everywhere.
    for (in_core, what, sql) in [
        (
            false,
            "active data keys other than one",
            "SELECT ABS(COUNT(*) - 1) FROM encryption_keys \
             WHERE key_status = 'active' AND deleted_at IS NULL",
        ),
        (
            false,
            "a serial issued twice by one issuer",
            "SELECT COUNT(*) FROM (SELECT issuer_certificate_id, serial_number FROM certificates \
             WHERE source = 'issued' GROUP BY issuer_certificate_id, serial_number \
             HAVING COUNT(*) > 1) twice",
        ),
        (
            false,
            "a certificate renewed twice",
            "SELECT COUNT(*) FROM (SELECT replaces_certificate_id FROM certificates \
             WHERE replaces_certificate_id IS NOT NULL AND deleted_at IS NULL \
             GROUP BY replaces_certificate_id HAVING COUNT(*) > 1) twice",
        ),
        (
            false,
            "one certificate for two requests",
            "SELECT COUNT(*) FROM (SELECT certificate_id FROM certificate_requests \
             WHERE certificate_id IS NOT NULL GROUP BY certificate_id HAVING COUNT(*) > 1) twice",
        ),
        (
            true,
            "one certificate for two workflow instances",
            "SELECT COUNT(*) FROM (SELECT certificate_id FROM workflow_instances \
             WHERE certificate_id IS NOT NULL GROUP BY certificate_id HAVING COUNT(*) > 1) twice",
        ),
    ] {
        let conn = if in_core { &mut core } else { &mut secure };
        let found = count(&mut conn.conn(), sql).await;
        assert_eq!(
            found, 0,
            "invariant broken: {what} ({found} found by {sql})"
        );
    }
    let completed: Vec<CertificateId> = scalars(
        &mut core.conn(),
        "SELECT certificate_id FROM workflow_instances \
         WHERE status = 'completed' AND certificate_id IS NOT NULL",
    )
    .await;
    for id in completed {
        assert!(
            stored.contains(&id),
            "a completed workflow instance names certificate {id}, which is not stored"
        );
    }

    // CRL numbers: distinct per CA, never past its counter.
    let crls: Vec<(CertificateId, i64)> = on_conn_pairs(
        &mut secure.conn(),
        "SELECT issuer_certificate_id, crl_number FROM crls ORDER BY issuer_certificate_id, crl_number",
    )
    .await;
    seen.crls = crls.len();
    let counters: BTreeMap<CertificateId, i64> = on_conn_pairs(
        &mut secure.conn(),
        "SELECT id, crl_number FROM certificates WHERE is_ca",
    )
    .await
    .into_iter()
    .collect();
    for pair in crls.windows(2) {
        assert!(
            pair[0].0 != pair[1].0 || pair[0].1 < pair[1].1,
            "CA {} has two CRLs numbered {}",
            pair[0].0,
            pair[0].1
        );
    }
    for (issuer, number) in &crls {
        let counter = counters.get(issuer).copied().unwrap_or(0);
        assert!(
            *number <= counter,
            "CA {issuer} stored CRL number {number} past its counter {counter}"
        );
    }
    drop(secure);
    drop(core);

    // Both audit chains.
    for (pool, kind) in [
        (&databases.secure, AuditLogKind::Secure),
        (&databases.core, AuditLogKind::Core),
    ] {
        let report = verify_chain(pool, kind).await.expect("verify chain");
        assert!(
            report.is_intact(),
            "{kind:?} audit chain: {:?}",
            report.broken
        );
        match kind {
            AuditLogKind::Secure => seen.secure_audit_rows = report.rows_checked,
            AuditLogKind::Core => seen.core_audit_rows = report.rows_checked,
        }
    }
    seen
}

async fn count(conn: &mut Conn<'_>, sql: &'static str) -> i64 {
    clm::on_conn!(conn, |c| sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut *c)
        .await)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

async fn scalars(conn: &mut Conn<'_>, sql: &'static str) -> Vec<CertificateId> {
    clm::on_conn!(conn, |c| sqlx::query_scalar::<_, CertificateId>(sql)
        .fetch_all(&mut *c)
        .await)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

async fn on_conn_pairs(conn: &mut Conn<'_>, sql: &'static str) -> Vec<(CertificateId, i64)> {
    clm::on_conn!(conn, |c| sqlx::query_as::<_, (CertificateId, i64)>(sql)
        .fetch_all(&mut *c)
        .await)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

async fn on_conn_rows(
    conn: &mut Conn<'_>,
    sql: &'static str,
) -> Vec<(CertificateRequestId, Option<CertificateId>, bool)> {
    clm::on_conn!(conn, |c| sqlx::query_as::<
        _,
        (CertificateRequestId, Option<CertificateId>, bool),
    >(sql)
    .fetch_all(&mut *c)
    .await)
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
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
