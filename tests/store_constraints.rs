//! Generic behaviour and database constraints, on SQLite and PostgreSQL:
//! soft delete, error mapping, updated_at triggers, append-only audit, JSON
//! document checks.

mod common;

use std::time::Duration;

use chrono::Duration as Days;
use clm::db::Databases;
use clm::model::*;
use clm::store::audit::{self, AuditLogKind};
use clm::store::certificates::{self, CertificateFilter, Certificates};
use clm::store::users::{self, UserFilter, Users};
use clm::store::{
    PageRequest, Value, get, id_value, now, organizations, policies, restore, roles, soft_delete,
    user_roles, workflows,
};
use clm::{Error, ErrorCode};
use common::*;

#[tokio::test]
async fn soft_delete_hides_and_restore_returns() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let u = user("ivy");
        users::insert(&mut c, &u).await.unwrap();
        soft_delete::<Users>(&mut c, u.id).await.unwrap();
        assert_eq!(
            get::<Users>(&mut c, u.id, false).await.unwrap_err().code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            users::get_by_username(&mut c, "ivy")
                .await
                .unwrap_err()
                .code(),
            ErrorCode::NotFound
        );
        let live = users::list_users(&mut c, &UserFilter::default(), &PageRequest::first(10))
            .await
            .unwrap();
        assert!(live.items.is_empty());
        let all = users::list_users(
            &mut c,
            &UserFilter::default(),
            &PageRequest::first(10).with_deleted(),
        )
        .await
        .unwrap();
        assert_eq!(all.items.len(), 1);
        assert!(all.items[0].deleted_at.is_some());
        assert!(
            get::<Users>(&mut c, u.id, true)
                .await
                .unwrap()
                .deleted_at
                .is_some()
        );
        assert_eq!(
            soft_delete::<Users>(&mut c, u.id).await.unwrap_err().code(),
            ErrorCode::NotFound
        );
        let mut changed = u.clone();
        changed.display_name = Some("x".into());
        assert_eq!(
            users::update(&mut c, &changed).await.unwrap_err().code(),
            ErrorCode::NotFound
        );
        restore::<Users>(&mut c, u.id).await.unwrap();
        assert_eq!(
            users::get_by_username(&mut c, "ivy").await.unwrap().id,
            u.id
        );
        assert_eq!(
            restore::<Users>(&mut c, u.id).await.unwrap_err().code(),
            ErrorCode::NotFound
        );

        // Same on the secure side with the certificate search.
        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let cert = certificate("deleted.example.com", now() + Days::days(10));
        certificates::insert(&mut c, &cert).await.unwrap();
        soft_delete::<Certificates>(&mut c, cert.id).await.unwrap();
        let f = CertificateFilter::default();
        assert!(
            certificates::search_certificates(&mut c, &f, &PageRequest::first(10))
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert!(
            certificates::list_certificates(&mut c, &f, &PageRequest::first(10))
                .await
                .unwrap()
                .items
                .is_empty()
        );
        assert_eq!(
            certificates::get_by_certificate_id(&mut c, &cert.certificate_id)
                .await
                .unwrap_err()
                .code(),
            ErrorCode::NotFound
        );
        let with =
            certificates::search_certificates(&mut c, &f, &PageRequest::first(10).with_deleted())
                .await
                .unwrap();
        assert_eq!(with.items.len(), 1);
        restore::<Certificates>(&mut c, cert.id).await.unwrap();
        assert_eq!(
            certificates::list_certificates(&mut c, &f, &PageRequest::first(10))
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    })
    .await;
}

/// A unique violation names the entity and field (mapped by constraint
/// name) and keeps the driver's error as its source.
fn assert_already_exists(err: Error, entity_name: &str, field: &str) {
    match &err {
        Error::AlreadyExists {
            entity, field: f, ..
        } => {
            assert_eq!(entity, entity_name, "{err}");
            assert!(f.contains(field), "{err}");
        }
        other => panic!("expected AlreadyExists on {entity_name}.{field}, got {other:?}"),
    }
    let source = std::error::Error::source(&err).expect("the sqlx error is kept");
    match source.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::Database(db)) => assert!(db.is_unique_violation(), "{db}"),
        other => panic!("expected a sqlx database error, got {other:?}"),
    }
    assert!(err.database_source().is_some());
    // PostgreSQL's detail quotes the duplicate value ("Key (username)=(jack)");
    // neither the message nor Debug carries it.
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(")=("), "{shown}");
    }
}

#[tokio::test]
async fn unique_check_and_foreign_key_violations_map_to_codes() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let u = user("jack");
        users::insert(&mut c, &u).await.unwrap();
        let mut dup = user("jack");
        dup.email = "other@example.com".into();
        assert_already_exists(
            users::insert(&mut c, &dup).await.unwrap_err(),
            "user",
            "username",
        );
        let mut dup = user("jill");
        dup.email = u.email.clone();
        assert_already_exists(
            users::insert(&mut c, &dup).await.unwrap_err(),
            "user",
            "email",
        );
        roles::insert(&mut c, &role("AUDITOR")).await.unwrap();
        assert_already_exists(
            roles::insert(&mut c, &role("AUDITOR")).await.unwrap_err(),
            "role",
            "role_code",
        );
        organizations::insert(&mut c, &organization("O1"))
            .await
            .unwrap();
        assert_already_exists(
            organizations::insert(&mut c, &organization("O1"))
                .await
                .unwrap_err(),
            "organization",
            "org_code",
        );
        policies::insert(&mut c, &policy("P1")).await.unwrap();
        assert_already_exists(
            policies::insert(&mut c, &policy("P1")).await.unwrap_err(),
            "policy",
            "policy_code",
        );
        workflows::insert(&mut c, &workflow("W1")).await.unwrap();
        assert_already_exists(
            workflows::insert(&mut c, &workflow("W1"))
                .await
                .unwrap_err(),
            "workflow",
            "workflow_code",
        );

        // CHECK: a status outside the set, via raw SQL.
        let err = raw(
            &mut c,
            "UPDATE users SET status = 'bogus' WHERE id = $1",
            vec![id_value(u.id)],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        let err = raw(
            &mut c,
            "UPDATE users SET failed_login_attempts = -1 WHERE id = $1",
            vec![id_value(u.id)],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");

        // FK: a grant to a user that does not exist.
        let r = role("GHOST");
        roles::insert(&mut c, &r).await.unwrap();
        let err = user_roles::insert(&mut c, &grant(UserId::new(), r.id))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");

        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let cert = certificate("a.example.com", now() + Days::days(1));
        certificates::insert(&mut c, &cert).await.unwrap();
        let mut same_fp = certificate("b.example.com", now() + Days::days(1));
        same_fp.fingerprint_sha256 = cert.fingerprint_sha256.clone();
        assert_already_exists(
            certificates::insert(&mut c, &same_fp).await.unwrap_err(),
            "certificate",
            "fingerprint_sha256",
        );
        let err = raw(
            &mut c,
            "UPDATE certificates SET status = 'bogus' WHERE id = $1",
            vec![id_value(cert.id)],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        let mut orphan = certificate("c.example.com", now() + Days::days(1));
        orphan.issuer_certificate_id = Some(CertificateId::new());
        let err = certificates::insert(&mut c, &orphan).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
        let err =
            clm::store::private_keys::insert(&mut c, &private_key(cert.id, EncryptionKeyId::new()))
                .await
                .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    })
    .await;
}

#[tokio::test]
async fn updated_at_is_set_by_the_database_trigger() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let u = user("kate");
        users::insert(&mut c, &u).await.unwrap();
        let r = role("TRIGGERED");
        roles::insert(&mut c, &r).await.unwrap();
        let o = organization("TRG");
        organizations::insert(&mut c, &o).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The app never writes updated_at: any newer value came from the trigger.
        let mut u2 = u.clone();
        u2.display_name = Some("Kate".into());
        users::update(&mut c, &u2).await.unwrap();
        let mut r2 = r.clone();
        r2.role_name = "Renamed".into();
        roles::update(&mut c, &r2).await.unwrap();
        raw(
            &mut c,
            "UPDATE organizations SET name = 'Raw' WHERE id = $1",
            vec![id_value(o.id)],
        )
        .await
        .unwrap();
        assert!(
            users::get_by_username(&mut c, "kate")
                .await
                .unwrap()
                .updated_at
                > u.updated_at
        );
        assert!(
            roles::get_by_code(&mut c, "TRIGGERED")
                .await
                .unwrap()
                .updated_at
                > r.updated_at
        );
        let got = organizations::get_by_code(&mut c, "TRG").await.unwrap();
        assert!(got.updated_at > o.updated_at);
        assert_eq!(got.created_at, o.created_at);

        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let cert = certificate("t.example.com", now() + Days::days(5));
        certificates::insert(&mut c, &cert).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        certificates::update_status(&mut c, cert.id, CertificateStatus::Suspended)
            .await
            .unwrap();
        let got = get::<Certificates>(&mut c, cert.id, false).await.unwrap();
        assert!(
            got.updated_at > cert.updated_at,
            "{:?} vs {:?}",
            got.updated_at,
            cert.updated_at
        );
    })
    .await;
}

#[tokio::test]
async fn audit_tables_refuse_update_and_delete() {
    on_both(|db: Databases| async move {
        for (kind, pool) in [
            (AuditLogKind::Secure, db.secure.clone()),
            (AuditLogKind::Core, db.core.clone()),
        ] {
            let mut pooled = pool.acquire().await.unwrap();
            let mut c = pooled.conn();
            let event = audit_event(1, None);
            audit::append(&mut c, kind, &event).await.unwrap();
            let table = kind.table();
            let err = raw(
                &mut c,
                &format!("UPDATE {table} SET action = 'forged' WHERE id = $1"),
                vec![id_value(event.id)],
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
            let err = raw(
                &mut c,
                &format!("DELETE FROM {table} WHERE id = $1"),
                vec![id_value(event.id)],
            )
            .await
            .unwrap_err();
            assert!(err.to_string().contains("append-only"), "{err}");
            assert_eq!(err.code(), ErrorCode::Conflict);
            let head = audit::last(&mut c, kind).await.unwrap().unwrap();
            assert_eq!((head.id, head.action.as_str()), (event.id, "issue"));
        }
    })
    .await;
}

#[test]
fn malformed_documents_are_rejected_naming_the_field() {
    let field_of = |err: Error| match err {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other:?}"),
    };
    assert_eq!(
        field_of(Permissions::parse(r#"{"certificates": "read"}"#).unwrap_err()),
        "permissions.certificates"
    );
    assert_eq!(
        field_of(Permissions::parse(r#"{"certificates": ["fly"]}"#).unwrap_err()),
        "permissions.certificates"
    );
    assert_eq!(
        field_of(PolicyRules::parse(r#"{"max_validity_days": "long"}"#).unwrap_err()),
        "policy_rules.max_validity_days"
    );
    assert_eq!(
        field_of(
            WorkflowDefinition::parse(
                r#"{"steps":[{"step_id":1,"type":"approval","approvers":["bogus"]}]}"#
            )
            .unwrap_err()
        ),
        "workflow_definition.steps[0].approvers"
    );
    assert!(
        field_of(
            SubjectAlternativeName::parse_list(r#"[{"type":"FTP","value":"x"}]"#).unwrap_err()
        )
        .starts_with("subject_alternative_names")
    );
    assert_eq!(
        field_of(
            SubjectAlternativeName::parse_list(r#"[{"type":"DNS","value":"bad name!"}]"#)
                .unwrap_err()
        ),
        "subject_alternative_names[0]"
    );
}

#[tokio::test]
async fn malformed_json_columns_are_rejected_naming_the_column() {
    on_both(|db: Databases| async move {
        let mut pooled = db.core.acquire().await.unwrap();
        let mut c = pooled.conn();
        let r = role("JSON");
        roles::insert(&mut c, &r).await.unwrap();
        let p = policy("JSONP");
        policies::insert(&mut c, &p).await.unwrap();
        let w = workflow("JSONW");
        workflows::insert(&mut c, &w).await.unwrap();

        // The database refuses a document of the wrong JSON type.
        for (sql, column, id) in [
            ("UPDATE roles SET permissions = '[]' WHERE id = $1", "permissions", id_value(r.id)),
            ("UPDATE policies SET policy_rules = '[1]' WHERE id = $1", "policy_rules", id_value(p.id)),
            ("UPDATE workflows SET workflow_definition = '\"x\"' WHERE id = $1", "workflow_definition", id_value(w.id)),
        ] {
            let err = raw(&mut c, sql, vec![id]).await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
            assert!(err.to_string().contains(column), "{err}");
        }

        // A well-typed but malformed document fails to load, naming its column.
        let cases: [(&str, &str, Value); 3] = [
            ("UPDATE roles SET permissions = '{\"certificates\": \"read\"}' WHERE id = $1", "permissions", id_value(r.id)),
            ("UPDATE policies SET policy_rules = '{\"max_validity_days\": \"x\"}' WHERE id = $1", "policy_rules", id_value(p.id)),
            ("UPDATE workflows SET workflow_definition = '{\"steps\": 1}' WHERE id = $1", "workflow_definition", id_value(w.id)),
        ];
        for (sql, _, id) in &cases {
            raw(&mut c, sql, vec![id.clone()]).await.unwrap();
        }
        let err = roles::get_by_code(&mut c, "JSON").await.unwrap_err();
        assert!(err.to_string().contains("permissions"), "{err}");
        let err = policies::get_by_code(&mut c, "JSONP").await.unwrap_err();
        assert!(err.to_string().contains("policy_rules"), "{err}");
        let err = workflows::get_by_code(&mut c, "JSONW").await.unwrap_err();
        assert!(err.to_string().contains("workflow_definition"), "{err}");

        let mut pooled = db.secure.acquire().await.unwrap();
        let mut c = pooled.conn();
        let cert = certificate("json.example.com", now() + Days::days(5));
        certificates::insert(&mut c, &cert).await.unwrap();
        let err = raw(
            &mut c,
            "UPDATE certificates SET subject_alternative_names = '{}' WHERE id = $1",
            vec![id_value(cert.id)],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        assert!(err.to_string().contains("subject_alternative_names"), "{err}");
        raw(
            &mut c,
            "UPDATE certificates SET subject_alternative_names = '[{\"type\": \"FTP\", \"value\": \"x\"}]' WHERE id = $1",
            vec![id_value(cert.id)],
        )
        .await
        .unwrap();
        let err = certificates::get_by_certificate_id(&mut c, &cert.certificate_id).await.unwrap_err();
        assert!(err.to_string().contains("subject_alternative_names"), "{err}");
    })
    .await;
}
