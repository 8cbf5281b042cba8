//! Repositories of the secure database, on SQLite and PostgreSQL.

mod common;

use chrono::Duration as Days;
use clm::ErrorCode;
use clm::db::Databases;
use clm::model::*;
use clm::store::audit::{self, AuditFilter, AuditLogKind};
use clm::store::certificates::{self, CertificateFilter};
use clm::store::{
    PageRequest, Value, certificate_requests, certificate_revocations, encryption_keys, id_value,
    key_rotation_history, now, private_keys,
};
use common::*;

#[tokio::test]
async fn encryption_keys_roundtrip_and_operations() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        assert_eq!(encryption_keys::max_version(&mut c).await.unwrap(), 0);
        assert!(encryption_keys::get_active(&mut c).await.unwrap().is_none());

        let k1 = encryption_key(1, KeyStatus::Active);
        encryption_keys::insert(&mut c, &k1).await.unwrap();
        let got = encryption_keys::get_by_key_id(&mut c, &k1.key_id)
            .await
            .unwrap();
        assert_eq!(got.id, k1.id);
        assert_eq!(got.wrapped_key, k1.wrapped_key);
        assert_eq!(got.created_at, k1.created_at);
        let got = clm::store::get::<encryption_keys::EncryptionKeys>(&mut c, k1.id, false)
            .await
            .unwrap();
        assert_eq!(got.key_id, k1.key_id);
        assert_eq!(
            encryption_keys::get_active(&mut c)
                .await
                .unwrap()
                .unwrap()
                .id,
            k1.id
        );

        // Rotation: the old key becomes decrypt-only, a new one active.
        let at = now();
        encryption_keys::set_status(&mut c, k1.id, KeyStatus::DecryptOnly, at)
            .await
            .unwrap();
        let k2 = encryption_key(2, KeyStatus::Active);
        encryption_keys::insert(&mut c, &k2).await.unwrap();
        assert_eq!(encryption_keys::max_version(&mut c).await.unwrap(), 2);
        assert_eq!(
            encryption_keys::get_active(&mut c)
                .await
                .unwrap()
                .unwrap()
                .id,
            k2.id
        );
        encryption_keys::set_status(&mut c, k1.id, KeyStatus::Retired, at)
            .await
            .unwrap();
        let retired = encryption_keys::get_by_key_id(&mut c, &k1.key_id)
            .await
            .unwrap();
        assert_eq!(retired.key_status, KeyStatus::Retired);
        assert_eq!(retired.retired_at, Some(at));

        assert_eq!(
            encryption_keys::increment_encryption_count(&mut c, k2.id, 5)
                .await
                .unwrap(),
            5
        );
        assert_eq!(
            encryption_keys::increment_encryption_count(&mut c, k2.id, 2)
                .await
                .unwrap(),
            7
        );
        encryption_keys::update_wrapping(
            &mut c,
            k2.id,
            &Opaque(vec![3; 48]),
            &Opaque(vec![4; 12]),
            "master-2",
        )
        .await
        .unwrap();
        let all = encryption_keys::list_all(&mut c).await.unwrap();
        assert_eq!(
            all.iter().map(|k| k.key_version).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(all[1].master_key_id, "master-2");
        assert_eq!(all[1].wrapped_key, Opaque(vec![3; 48]));

        let mut changed = all[1].clone();
        changed.encryption_count = 100;
        encryption_keys::update(&mut c, &changed).await.unwrap();
        let page = encryption_keys::list_encryption_keys(
            &mut c,
            &encryption_keys::EncryptionKeyFilter {
                key_status: Some(KeyStatus::Active),
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].encryption_count, 100);

        // A second active key is refused by the partial unique index.
        let err = encryption_keys::insert(&mut c, &encryption_key(3, KeyStatus::Active))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
        let err =
            encryption_keys::set_status(&mut c, EncryptionKeyId::new(), KeyStatus::Retired, at)
                .await
                .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
    })
    .await;
}

#[tokio::test]
async fn certificates_roundtrip_search_and_operations() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let t = now();
        let owner = UserId::new();
        let org = OrganizationId::new();

        let mut ca = certificate("Test Issuing CA", t + Days::days(3650));
        ca.is_ca = true;
        ca.path_len = Some(0);
        ca.certificate_kind = CertificateKind::IntermediateCa;
        ca.subject_key_id = Some("aabbcc".into());
        certificates::insert(&mut c, &ca).await.unwrap();

        let mut leaf = certificate("www.example.com", t + Days::days(10));
        leaf.issuer_certificate_id = Some(ca.id);
        leaf.source = CertificateSource::Issued;
        leaf.owner_user_id = Some(owner);
        leaf.organization_id = Some(org);
        leaf.authority_key_id = Some("aabbcc".into());
        leaf.subject_alternative_names = sqlx::types::Json(vec![
            SubjectAlternativeName::Dns("www.example.com".into()),
            SubjectAlternativeName::Ip("192.168.1.1".parse().unwrap()),
        ]);
        certificates::insert(&mut c, &leaf).await.unwrap();

        let got = certificates::get_by_certificate_id(&mut c, &leaf.certificate_id)
            .await
            .unwrap();
        assert_eq!(got.id, leaf.id);
        assert_eq!(got.certificate_pem, leaf.certificate_pem);
        assert_eq!(
            got.subject_alternative_names.0,
            leaf.subject_alternative_names.0
        );
        assert_eq!(got.not_after, leaf.not_after);
        let got = certificates::get_by_fingerprint(&mut c, Some(org), &leaf.fingerprint_sha256)
            .await
            .unwrap();
        assert_eq!(got.id, leaf.id);
        // Fingerprints are looked up within one scope: the shared rows hold none.
        assert!(
            certificates::get_by_fingerprint(&mut c, None, &leaf.fingerprint_sha256)
                .await
                .is_err()
        );

        // Bulk import: 1,500 rows crosses the multi-row chunk boundary.
        let bulk: Vec<Certificate> = (0..1500)
            .map(|i| certificate(&format!("bulk{i}.example.org"), t + Days::days(100 + i)))
            .collect();
        const { assert!(certificates::INSERT_CHUNK_ROWS < 1500) };
        assert_eq!(
            certificates::insert_many(&mut c, &bulk).await.unwrap(),
            1500
        );
        let fps: Vec<String> = vec![
            bulk[0].fingerprint_sha256.clone(),
            bulk[1499].fingerprint_sha256.clone(),
            "0".repeat(64),
        ];
        let mut found = certificates::find_by_fingerprints(&mut c, None, &fps)
            .await
            .unwrap();
        found.sort();
        let mut expected = vec![
            (bulk[0].fingerprint_sha256.clone(), bulk[0].id),
            (bulk[1499].fingerprint_sha256.clone(), bulk[1499].id),
        ];
        expected.sort();
        assert_eq!(found, expected);

        // Search filters.
        let search = |filter: CertificateFilter| {
            let db = db.clone();
            async move {
                let mut pooled = db.secure.acquire().await.unwrap();
                let mut c = pooled.conn();
                certificates::search_certificates(&mut c, &filter, &PageRequest::first(1000))
                    .await
                    .unwrap()
                    .items
            }
        };
        let hits = search(CertificateFilter {
            common_name: Some("WWW.EXAMPLE".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, leaf.id);
        assert_eq!(hits[0].certificate_pem, "", "light rows carry no PEM");
        let hits = search(CertificateFilter {
            common_name: Some("www.example".into()),
            with_pem: true,
            ..Default::default()
        })
        .await;
        assert_eq!(hits[0].certificate_pem, leaf.certificate_pem);
        let hits = search(CertificateFilter {
            san: Some("192.168.1.1".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(hits.iter().map(|c| c.id).collect::<Vec<_>>(), vec![leaf.id]);
        assert!(
            search(CertificateFilter {
                san: Some("192.168.1".into()),
                ..Default::default()
            })
            .await
            .is_empty()
        );
        let hits = search(CertificateFilter {
            owner_user_id: Some(owner),
            organization_ids: Some(vec![org, OrganizationId::new()]),
            issuer_certificate_id: Some(ca.id),
            status: Some(vec![CertificateStatus::Active, CertificateStatus::Expiring]),
            ..Default::default()
        })
        .await;
        assert_eq!(hits.len(), 1);
        assert!(
            search(CertificateFilter {
                organization_ids: Some(vec![]),
                ..Default::default()
            })
            .await
            .is_empty()
        );
        let hits = search(CertificateFilter {
            is_ca: Some(true),
            ..Default::default()
        })
        .await;
        assert_eq!(hits.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ca.id]);
        let hits = search(CertificateFilter {
            expires_after: Some(t + Days::days(5)),
            expires_before: Some(t + Days::days(101)),
            ..Default::default()
        })
        .await;
        assert_eq!(
            hits.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![leaf.id, bulk[0].id, bulk[1].id],
            "ordered by not_after"
        );

        // Chain helpers.
        let cands = certificates::find_issuer_candidates(&mut c, "CN=Test Issuing CA")
            .await
            .unwrap();
        assert_eq!(cands.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ca.id]);
        let by_ski = certificates::find_by_subject_key_id(&mut c, "aabbcc")
            .await
            .unwrap();
        assert_eq!(by_ski.iter().map(|c| c.id).collect::<Vec<_>>(), vec![ca.id]);
        assert!(
            certificates::exists_serial(&mut c, Some(ca.id), &leaf.serial_number)
                .await
                .unwrap()
        );
        assert!(
            !certificates::exists_serial(&mut c, Some(ca.id), "00ff")
                .await
                .unwrap()
        );
        assert!(
            certificates::exists_serial(&mut c, None, &ca.serial_number)
                .await
                .unwrap()
        );

        // Status, CRL number, update.
        certificates::set_crl_number(&mut c, ca.id, 7)
            .await
            .unwrap();
        certificates::update_status(&mut c, leaf.id, CertificateStatus::Suspended)
            .await
            .unwrap();
        let mut l = certificates::get_by_certificate_id(&mut c, &leaf.certificate_id)
            .await
            .unwrap();
        assert_eq!(l.status, CertificateStatus::Suspended);
        l.status = CertificateStatus::Active;
        l.policy_version = Some(3);
        l.certificate_pem = String::new(); // ignored by update: PEM is immutable
        certificates::update(&mut c, &l).await.unwrap();
        let l2 = certificates::get_by_certificate_id(&mut c, &leaf.certificate_id)
            .await
            .unwrap();
        assert_eq!(l2.policy_version, Some(3));
        assert_eq!(l2.certificate_pem, leaf.certificate_pem);
        assert_eq!(
            certificates::get_by_certificate_id(&mut c, &ca.certificate_id)
                .await
                .unwrap()
                .crl_number,
            7
        );

        // refresh_statuses: expired, expiring, and untouched revoked/pending.
        let mut gone = certificate("gone.example.com", t - Days::days(1));
        gone.not_before = t - Days::days(30);
        let mut soon = certificate("soon.example.com", t + Days::days(20));
        soon.status = CertificateStatus::Active;
        let mut revoked = certificate("revoked.example.com", t - Days::days(2));
        revoked.not_before = t - Days::days(30);
        revoked.status = CertificateStatus::Revoked;
        let mut pending = certificate("pending.example.com", t + Days::days(3));
        pending.status = CertificateStatus::Pending;
        certificates::insert_many(
            &mut c,
            &[gone.clone(), soon.clone(), revoked.clone(), pending.clone()],
        )
        .await
        .unwrap();
        let (expired, expiring) = certificates::refresh_statuses(&mut c, t, 30).await.unwrap();
        assert_eq!(expired, 1);
        assert_eq!(expiring, 2, "leaf (10 days) and soon (20 days)");
        let status_of = |id: CertificateId| {
            let db = db.clone();
            async move {
                let mut pooled = db.secure.acquire().await.unwrap();
                let mut c = pooled.conn();
                clm::store::get::<certificates::Certificates>(&mut c, id, false)
                    .await
                    .unwrap()
                    .status
            }
        };
        assert_eq!(status_of(gone.id).await, CertificateStatus::Expired);
        assert_eq!(status_of(soon.id).await, CertificateStatus::Expiring);
        assert_eq!(status_of(revoked.id).await, CertificateStatus::Revoked);
        assert_eq!(status_of(pending.id).await, CertificateStatus::Pending);
        assert_eq!(status_of(bulk[0].id).await, CertificateStatus::Active);
        assert_eq!(
            certificates::refresh_statuses(&mut c, t, 30).await.unwrap(),
            (0, 0)
        );
    })
    .await;
}

/// `n` certificates (`<prefix><i>.example.com`), each with a private key
/// sealed under `key`.
async fn certificates_with_keys(
    c: &mut clm::db::Conn<'_>,
    prefix: &str,
    n: usize,
    key: EncryptionKeyId,
) -> (Vec<Certificate>, Vec<PrivateKeyRecord>) {
    let certs: Vec<Certificate> = (0..n)
        .map(|i| certificate(&format!("{prefix}{i}.example.com"), now() + Days::days(30)))
        .collect();
    certificates::insert_many(c, &certs).await.unwrap();
    let mut keys = Vec::new();
    for cert in &certs {
        let sealed = private_key(cert.id, key);
        private_keys::insert(c, &sealed).await.unwrap();
        keys.push(sealed);
    }
    (certs, keys)
}

#[tokio::test]
async fn private_keys_batches_and_reseal() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let old = encryption_key(1, KeyStatus::DecryptOnly);
        let new = encryption_key(2, KeyStatus::Active);
        encryption_keys::insert(&mut c, &old).await.unwrap();
        encryption_keys::insert(&mut c, &new).await.unwrap();
        let (certs, keys) = certificates_with_keys(&mut c, "k", 5, old.id).await;
        let got = private_keys::get_by_certificate(&mut c, certs[2].id)
            .await
            .unwrap();
        assert_eq!(got.id, keys[2].id);
        assert_eq!(got.encrypted_key_material, keys[2].encrypted_key_material);
        assert_eq!(
            private_keys::count_for_key(&mut c, old.id).await.unwrap(),
            5
        );

        // Resumable walk in id order.
        let first = private_keys::batch_for_key(&mut c, old.id, None, 2)
            .await
            .unwrap();
        assert_eq!(
            first.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![keys[0].id, keys[1].id]
        );
        let rest = private_keys::batch_for_key(&mut c, old.id, Some(keys[1].id), 10)
            .await
            .unwrap();
        assert_eq!(rest.len(), 3);
        for key in first.iter().chain(&rest) {
            private_keys::reseal(
                &mut c,
                key.id,
                new.id,
                &Opaque(vec![5; 64]),
                &Opaque(vec![6; 12]),
            )
            .await
            .unwrap();
        }
        assert_eq!(
            private_keys::count_for_key(&mut c, old.id).await.unwrap(),
            0
        );
        assert_eq!(
            private_keys::count_for_key(&mut c, new.id).await.unwrap(),
            5
        );
        let page = private_keys::list_private_keys(
            &mut c,
            &private_keys::PrivateKeyFilter {
                encryption_key_id: Some(new.id),
                ..Default::default()
            },
            &PageRequest::first(3),
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 3);
        assert!(page.next_cursor.is_some());
        assert_eq!(page.items[0].encrypted_key_material, Opaque(vec![5; 64]));

        // 1:1 with certificates.
        let err = private_keys::insert(&mut c, &private_key(certs[0].id, new.id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
    })
    .await;
}

/// A reader holding an old snapshot keeps SQLite's passive checkpoints from
/// resetting the write-ahead log, which then grows with every commit;
/// `Pool::bound_wal` (bulk writers call it after each batch) truncates it
/// once it is past its bound, and leaves a small log alone.
#[tokio::test]
async fn sqlite_write_ahead_log_past_its_bound_is_truncated() {
    use clm::db::{Conn, SQLITE_WAL_BOUND_BYTES};
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_databases(&clm::ClmConfig::sqlite(dir.path()).with_max_connections(4)).await;
    let wal = dir.path().join("secure.db-wal");
    let wal_size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let mut reader = db.secure.acquire().await.unwrap();
    let mut writer = db.secure.acquire().await.unwrap();
    let Conn::Sqlite(r) = reader.conn() else {
        panic!("a SQLite connection")
    };
    let Conn::Sqlite(w) = writer.conn() else {
        panic!("a SQLite connection")
    };
    sqlx::query("CREATE TABLE wal_filler (b BLOB NOT NULL)")
        .execute(&mut *w)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut *r).await.unwrap();
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM wal_filler")
        .fetch_one(&mut *r)
        .await
        .unwrap();
    assert_eq!(none, 0);
    // 72 commits of 1 MiB while the reader's snapshot pins the log.
    for _ in 0..72 {
        sqlx::query("INSERT INTO wal_filler (b) VALUES (zeroblob(1048576))")
            .execute(&mut *w)
            .await
            .unwrap();
    }
    let grown = wal_size();
    assert!(
        grown > SQLITE_WAL_BOUND_BYTES,
        "the log holds {grown} bytes"
    );
    sqlx::query("COMMIT").execute(&mut *r).await.unwrap();
    drop(reader);
    drop(writer);

    db.secure.bound_wal().await;
    assert_eq!(wal_size(), 0, "the log was {grown} bytes");
    let mut pooled = db.secure.acquire().await.unwrap();
    let Conn::Sqlite(c) = pooled.conn() else {
        panic!("a SQLite connection")
    };
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM wal_filler")
        .fetch_one(&mut *c)
        .await
        .unwrap();
    assert_eq!(rows, 72);
    sqlx::query("INSERT INTO wal_filler (b) VALUES (zeroblob(1024))")
        .execute(&mut *c)
        .await
        .unwrap();
    drop(pooled);
    let small = wal_size();
    assert!(small > 0 && small < SQLITE_WAL_BOUND_BYTES, "{small}");
    db.secure.bound_wal().await;
    assert_eq!(wal_size(), small, "a log under its bound is left alone");
    db.close().await;
}

/// The rotation writes a batch it read earlier, on another connection:
/// a row re-sealed (or re-keyed) in between must keep what it has now.
#[tokio::test]
async fn reseal_many_updates_only_rows_still_under_the_old_key() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let old = encryption_key(1, KeyStatus::DecryptOnly);
        let other = encryption_key(2, KeyStatus::DecryptOnly);
        let new = encryption_key(3, KeyStatus::Active);
        for key in [&old, &other, &new] {
            encryption_keys::insert(&mut c, key).await.unwrap();
        }
        // 100 rows: on SQLite statements of 64, 32 and 4 rows.
        let (_, keys) = certificates_with_keys(&mut c, "r", 100, old.id).await;
        // Nothing to write is no statement error and no change.
        assert_eq!(
            private_keys::reseal_many(&mut c, old.id, &[])
                .await
                .unwrap(),
            0
        );
        // After the batch was read, another writer moved keys 1 and 70 elsewhere.
        let moved = [1, 70];
        for i in moved {
            private_keys::reseal(
                &mut c,
                keys[i].id,
                other.id,
                &Opaque(vec![7; 64]),
                &Opaque(vec![8; 12]),
            )
            .await
            .unwrap();
        }
        let rows: Vec<private_keys::Resealed> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| private_keys::Resealed {
                id: key.id,
                encryption_key_id: new.id,
                encrypted_key_material: Opaque(vec![u8::try_from(i).unwrap(); 64]),
                nonce: Opaque(vec![9; 12]),
            })
            .collect();
        assert_eq!(
            private_keys::reseal_many(&mut c, old.id, &rows)
                .await
                .unwrap(),
            98
        );
        for (i, key) in keys.iter().enumerate() {
            let got = private_keys::get_by_certificate(&mut c, key.certificate_id)
                .await
                .unwrap();
            if moved.contains(&i) {
                assert_eq!(got.encryption_key_id, other.id);
                assert_eq!(got.encrypted_key_material, Opaque(vec![7; 64]));
                assert_eq!(got.nonce, Opaque(vec![8; 12]));
            } else {
                assert_eq!(got.encryption_key_id, new.id);
                assert_eq!(
                    got.encrypted_key_material,
                    Opaque(vec![u8::try_from(i).unwrap(); 64])
                );
                assert_eq!(got.nonce, Opaque(vec![9; 12]));
            }
        }
        assert_eq!(
            private_keys::count_for_key(&mut c, old.id).await.unwrap(),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn requests_revocations_rotations() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();

        let mut req = request("api.example.com");
        req.requested_by_user_id = Some(UserId::new());
        certificate_requests::insert(&mut c, &req).await.unwrap();
        let got = certificate_requests::get_by_request_id(&mut c, &req.request_id)
            .await
            .unwrap();
        assert_eq!(got.id, req.id);
        assert_eq!(
            got.subject_alternative_names.0,
            req.subject_alternative_names.0
        );
        let cert = certificate("api.example.com", now() + Days::days(90));
        certificates::insert(&mut c, &cert).await.unwrap();
        let mut issued = got.clone();
        issued.status = RequestStatus::Issued;
        issued.certificate_id = Some(cert.id);
        certificate_requests::update(&mut c, &issued).await.unwrap();
        let page = certificate_requests::list_certificate_requests(
            &mut c,
            &certificate_requests::CertificateRequestFilter {
                status: Some(vec![RequestStatus::Issued]),
                requested_by_user_id: req.requested_by_user_id,
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].certificate_id, Some(cert.id));

        // Revocations: one standing per certificate; holds can be released.
        let mut ca = certificate("Issuing CA", now() + Days::days(3000));
        ca.is_ca = true;
        certificates::insert(&mut c, &ca).await.unwrap();
        let mut c1 = certificate("r1.example.com", now() + Days::days(90));
        c1.issuer_certificate_id = Some(ca.id);
        let mut c2 = certificate("r2.example.com", now() + Days::days(90));
        c2.issuer_certificate_id = Some(ca.id);
        certificates::insert_many(&mut c, &[c1.clone(), c2.clone()])
            .await
            .unwrap();
        let hold = revocation(&c1, RevocationReason::CertificateHold);
        certificate_revocations::insert(&mut c, &hold)
            .await
            .unwrap();
        let final_ = revocation(&c2, RevocationReason::KeyCompromise);
        certificate_revocations::insert(&mut c, &final_)
            .await
            .unwrap();
        let err =
            certificate_revocations::insert(&mut c, &revocation(&c2, RevocationReason::Superseded))
                .await
                .unwrap_err();
        assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
        assert_eq!(
            certificate_revocations::get_current(&mut c, c1.id)
                .await
                .unwrap()
                .unwrap()
                .id,
            hold.id
        );
        let crl = certificate_revocations::list_for_issuer(&mut c, ca.id)
            .await
            .unwrap();
        assert_eq!(crl.len(), 2);
        let err = certificate_revocations::release(&mut c, final_.id, None, now())
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::InvalidInput,
            "only holds are released: {err}"
        );
        certificate_revocations::release(&mut c, hold.id, Some(UserId::new()), now())
            .await
            .unwrap();
        assert!(
            certificate_revocations::get_current(&mut c, c1.id)
                .await
                .unwrap()
                .is_none()
        );
        let crl = certificate_revocations::list_for_issuer(&mut c, ca.id)
            .await
            .unwrap();
        assert_eq!(
            crl.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![final_.id]
        );
        let all = certificate_revocations::list_certificate_revocations(
            &mut c,
            &certificate_revocations::CertificateRevocationFilter {
                issuer_certificate_id: Some(ca.id),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(all.items.len(), 2);

        // Key rotation history.
        let k1 = encryption_key(1, KeyStatus::DecryptOnly);
        let k2 = encryption_key(2, KeyStatus::Active);
        encryption_keys::insert(&mut c, &k1).await.unwrap();
        encryption_keys::insert(&mut c, &k2).await.unwrap();
        assert!(
            key_rotation_history::get_running(&mut c, RotationType::DataKey)
                .await
                .unwrap()
                .is_none()
        );
        let rot = rotation(Some(k1.id), Some(k2.id));
        key_rotation_history::insert(&mut c, &rot).await.unwrap();
        let err = key_rotation_history::insert(&mut c, &rotation(Some(k1.id), Some(k2.id)))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            ErrorCode::AlreadyExists,
            "one running rotation: {err}"
        );
        let last = PrivateKeyId::new();
        key_rotation_history::update_progress(&mut c, rot.id, 4, Some(last))
            .await
            .unwrap();
        let running = key_rotation_history::get_running(&mut c, RotationType::DataKey)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (running.rotated_items, running.last_item_id),
            (4, Some(last))
        );
        let done_at = now();
        key_rotation_history::finish(&mut c, rot.id, RotationStatus::Completed, None, done_at)
            .await
            .unwrap();
        assert!(
            key_rotation_history::get_running(&mut c, RotationType::DataKey)
                .await
                .unwrap()
                .is_none()
        );
        let err = key_rotation_history::update_progress(&mut c, rot.id, 5, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        let listed = key_rotation_history::list_key_rotations(
            &mut c,
            &key_rotation_history::KeyRotationFilter {
                status: Some(RotationStatus::Completed),
                ..Default::default()
            },
            &PageRequest::first(10),
        )
        .await
        .unwrap();
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].completed_at, Some(done_at));
    })
    .await;
}

#[tokio::test]
async fn audit_logs_append_list_walk() {
    on_both(|db: Databases| async move {
        for (kind, pool) in [
            (AuditLogKind::Secure, db.secure.clone()),
            (AuditLogKind::Core, db.core.clone()),
        ] {
            let mut pooled = pool.acquire().await.unwrap();
            let mut c = pooled.conn();
            assert!(audit::last(&mut c, kind).await.unwrap().is_none());
            let target = ResourceId::new();
            for seq in 1..=25 {
                let resource = if seq % 5 == 0 {
                    Some(target)
                } else {
                    Some(ResourceId::new())
                };
                audit::append(&mut c, kind, &audit_event(seq, resource))
                    .await
                    .unwrap();
            }
            let err = audit::append(&mut c, kind, &audit_event(25, None))
                .await
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::AlreadyExists, "{err}");
            let head = audit::last(&mut c, kind).await.unwrap().unwrap();
            assert_eq!(head.sequence_number, 25);
            assert_eq!(head.details.0["n"], 25);
            let got = match kind {
                AuditLogKind::Secure => {
                    clm::store::get::<audit::SecureAuditLog>(&mut c, head.id, false).await
                }
                AuditLogKind::Core => {
                    clm::store::get::<audit::AuditLog>(&mut c, head.id, false).await
                }
            }
            .unwrap();
            assert_eq!(got.row_hash, "h25");

            // Newest first, keyset on sequence_number.
            let mut seen = Vec::new();
            let mut page = PageRequest::first(10);
            loop {
                let p = audit::list_audit(&mut c, kind, &AuditFilter::default(), &page)
                    .await
                    .unwrap();
                seen.extend(p.items.iter().map(|e| e.sequence_number));
                match p.next_cursor {
                    Some(cur) => page = PageRequest::after(10, Some(cur)),
                    None => break,
                }
            }
            assert_eq!(seen, (1..=25).rev().collect::<Vec<_>>());
            let filtered = audit::list_audit(
                &mut c,
                kind,
                &AuditFilter {
                    resource_type: Some("certificate".into()),
                    resource_id: Some(target),
                    ..Default::default()
                },
                &PageRequest::first(50),
            )
            .await
            .unwrap();
            assert_eq!(
                filtered
                    .items
                    .iter()
                    .map(|e| e.sequence_number)
                    .collect::<Vec<_>>(),
                vec![25, 20, 15, 10, 5]
            );
            let none = audit::list_audit(
                &mut c,
                kind,
                &AuditFilter {
                    since: Some(now() + Days::days(1)),
                    ..Default::default()
                },
                &PageRequest::first(50),
            )
            .await
            .unwrap();
            assert!(none.items.is_empty());

            // Oldest first for chain verification.
            let walked = audit::walk(&mut c, kind, 20, 3).await.unwrap();
            assert_eq!(
                walked.iter().map(|e| e.sequence_number).collect::<Vec<_>>(),
                vec![21, 22, 23]
            );

            // No soft delete on append-only tables.
            let err = match kind {
                AuditLogKind::Secure => {
                    clm::store::soft_delete::<audit::SecureAuditLog>(&mut c, head.id).await
                }
                AuditLogKind::Core => {
                    clm::store::soft_delete::<audit::AuditLog>(&mut c, head.id).await
                }
            }
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::Conflict);
        }
    })
    .await;
}

/// The certificate writer's append after the head it remembers goes in
/// only when that row (sequence number and hash) is the chain's last; a
/// stale guess writes nothing, so the caller reads the head and chains
/// again. SQLite always declines (its head read costs no round trip).
#[tokio::test]
async fn audit_appends_after_a_remembered_head_only_when_it_is_the_head() {
    on_both(|db: Databases| async move {
        for (kind, pool) in [
            (AuditLogKind::Secure, db.secure.clone()),
            (AuditLogKind::Core, db.core.clone()),
        ] {
            let mut pooled = pool.acquire().await.unwrap();
            let mut c = pooled.conn();
            for seq in 1..=3 {
                audit::append(&mut c, kind, &audit_event(seq, None))
                    .await
                    .unwrap();
            }
            // Another hash at the head (a rolled-back append's), a row
            // below the head, a row that does not exist.
            for stale in [(3, "h3-rolled-back"), (2, "h2"), (4, "h4")] {
                let went_in =
                    audit::append_many_after(&mut c, kind, stale, &[audit_event(4, None)])
                        .await
                        .unwrap();
                assert!(!went_in, "{kind:?} after {stale:?}");
            }
            let head = audit::last(&mut c, kind).await.unwrap().unwrap();
            assert_eq!(head.sequence_number, 3);
            let went_in = audit::append_many_after(
                &mut c,
                kind,
                (3, "h3"),
                &[audit_event(4, None), audit_event(5, None)],
            )
            .await
            .unwrap();
            let postgres = c.dialect() == clm::db::Dialect::Postgres;
            assert_eq!(went_in, postgres, "{kind:?}");
            let expected = if postgres { 5 } else { 3 };
            let head = audit::last(&mut c, kind).await.unwrap().unwrap();
            assert_eq!(head.sequence_number, expected);
        }
    })
    .await;
}

/// The SAN search and the lookups by owner, policy and predecessor are
/// answered by their indexes on PostgreSQL (the SAN index is a GIN over
/// containment; the others are partial, holding only non-NULL values).
#[tokio::test]
async fn san_and_reference_lookups_use_their_indexes_on_postgres() {
    common::on_postgres(&|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        raw(&mut c, "SET enable_seqscan = off", Vec::new())
            .await
            .unwrap();
        let san = clm::db::Dialect::Postgres.certificate_has_san(1);
        let lookups = [
            (san, "idx_certificates_sans", "svc.example.com".to_string()),
            (
                "owner_user_id = $1::uuid".to_string(),
                "idx_certificates_owner",
                uuid::Uuid::new_v4().to_string(),
            ),
            (
                "policy_id = $1::uuid".to_string(),
                "idx_certificates_policy",
                uuid::Uuid::new_v4().to_string(),
            ),
            (
                "replaces_certificate_id = $1::uuid".to_string(),
                "idx_certificates_replaces",
                uuid::Uuid::new_v4().to_string(),
            ),
        ];
        for (clause, index, value) in lookups {
            let sql = format!("SELECT id FROM certificates WHERE {clause}");
            let plan = query_plan(&mut c, &sql, vec![Value::Text(value)]).await;
            assert!(
                plan.contains(index),
                "{clause} does not use {index}:\n{plan}"
            );
        }
    })
    .await;
}

/// SQLite answers a search by SAN from `certificate_san_values` (migration
/// 0014), then reads each certificate by its key: before, it read every
/// certificate's JSON (8.3 s at a million).
#[tokio::test]
async fn san_search_seeks_its_values_table_on_sqlite() {
    common::on_sqlite(&|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let san = clm::db::Dialect::Sqlite.certificate_has_san(1);
        // The shape of `search_certificates`: live rows in expiry order, a page.
        let sql = format!(
            "SELECT id FROM certificates
             WHERE deleted_at IS NULL AND {san} ORDER BY not_after, id LIMIT 101"
        );
        let plan = query_plan(&mut c, &sql, vec![Value::Text("svc.example.com".into())]).await;
        assert!(
            plan.contains("SEARCH certificate_san_values USING PRIMARY KEY (value=?)"),
            "the SAN values are not sought:\n{plan}"
        );
        assert!(
            plan.contains("SEARCH certificates USING INDEX sqlite_autoindex_certificates_1 (id=?)"),
            "the certificates are not read by key:\n{plan}"
        );
        assert!(!plan.contains("SCAN"), "a search by SAN scans:\n{plan}");
    })
    .await;
}

/// SQLite's re-sealing finds its rows by key: an `UPDATE ... FROM` a
/// VALUES list of 64 rows was planned as a walk of every key sealed by the
/// old data key, with the list scanned for each (647 keys/s at 100,000).
#[tokio::test]
async fn sqlite_reseal_seeks_each_row_by_key() {
    common::on_sqlite(&|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        for rows in [1, 4, 64] {
            // Four values per row, then the old data key; their types do
            // not change the plan.
            let values = (0..rows * 4 + 1)
                .map(|_| id_value(uuid::Uuid::new_v4()))
                .collect();
            let plan = query_plan(&mut c, &private_keys::sqlite_reseal_sql(rows), values).await;
            // Each row sought by its id: a search on the old data key alone
            // walks every key it seals (the `UPDATE ... FROM` plan at 64 rows).
            let by_id = plan.lines().any(|line| {
                line.starts_with("SEARCH private_keys")
                    && (line.ends_with("AND id=?)") || line.ends_with("(id=?)"))
            });
            assert!(
                by_id,
                "{rows} rows: re-sealing does not seek each key by id:\n{plan}"
            );
        }
    })
    .await;
}

/// A search by owner in expiry order (the shape of `search_certificates`
/// with an owner) reads a range of idx_certificates_owner_live and sorts
/// nothing: before migration 0013 (PostgreSQL) / 0015 (SQLite) it read all
/// of the owner's rows and sorted them for one page.
#[tokio::test]
async fn owner_search_is_a_range_of_the_owner_index() {
    on_both(|db: Databases| async move {
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let postgres = c.dialect() == clm::db::Dialect::Postgres;
        let owner = id_value(uuid::Uuid::new_v4());
        if postgres {
            raw(&mut c, "SET enable_seqscan = off", Vec::new())
                .await
                .unwrap();
        }
        let param = if postgres { "$1" } else { "?" };
        let sql = format!(
            "SELECT id FROM certificates WHERE deleted_at IS NULL
             AND owner_user_id = {param} ORDER BY not_after, id LIMIT 101"
        );
        let plan = query_plan(&mut c, &sql, vec![owner]).await;
        assert!(
            plan.contains("idx_certificates_owner_live"),
            "the owner search does not use idx_certificates_owner_live:\n{plan}"
        );
        assert!(
            !plan.contains("Sort") && !plan.contains("TEMP B-TREE"),
            "the owner search sorts:\n{plan}"
        );
    })
    .await;
}
