//! Attacks: the schema's views as operations (issue 12). A view reads the
//! same rows as the tables' own operations, so it must refuse and cut
//! exactly as they do: the tenant next door sees none of another tenant's
//! rows, a narrower actor is refused, and a bad argument changes nothing.

use chrono::{Duration, Utc};
use clm::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, PemLabel,
    build_certificate, der_to_pem,
};
use clm::model::{CertificateKind, OrganizationId, Permissions, SubjectAlternativeName};
use clm::service::identity::NewApiKey;
use clm::service::inventory::ImportRequest;
use clm::service::views::ViewFilter;
use clm::store::PageRequest;
use clm::{Clm, ErrorCode, SecuritySettings};

use crate::common::on_both_keyed;
use crate::members::member;

/// A self-signed TLS certificate named `cn` that expires in `days`.
fn expiring_pem(cn: &str, days: i64) -> String {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let mut template = CertificateTemplate::new(
        DistinguishedName::common_name(cn),
        CertificateKind::TlsServer,
        now - Duration::days(1),
        now + Duration::days(days),
    );
    template.subject_alternative_names = vec![SubjectAlternativeName::Dns(cn.to_string())];
    let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
        .expect("certificate");
    der_to_pem(PemLabel::Certificate, &der)
}

async fn import(clm: &Clm, org: Option<OrganizationId>, cn: &str, days: i64) {
    let report = clm
        .import_certificates(
            &clm.system_actor(),
            ImportRequest {
                data: expiring_pem(cn, days).into_bytes(),
                organization_id: org,
                ..Default::default()
            },
        )
        .await
        .expect("import");
    assert_eq!(report.imported.len(), 1, "{report:?}");
}

const READER: &[(&str, &[&str])] = &[("certificates", &["read"]), ("users", &["read"])];

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

#[tokio::test]
async fn views_show_a_tenant_its_own_and_shared_rows_only() {
    on_both_keyed(security(), |clm| async move {
        let alice_member = member(&clm, "a", READER).await;
        let (org_a, alice, alice_id) = (alice_member.org, alice_member.actor, alice_member.user);
        let bob_member = member(&clm, "b", READER).await;
        let (org_b, bob, bob_id) = (bob_member.org, bob_member.actor, bob_member.user);
        import(&clm, Some(org_a), "a.example.com", 10).await;
        import(&clm, Some(org_b), "b.example.com", 10).await;
        import(&clm, None, "shared.example.com", 10).await;
        let page = PageRequest::first(100);
        let all = ViewFilter::default();

        let names = |rows: Vec<Option<String>>| {
            let mut names: Vec<String> = rows.into_iter().flatten().collect();
            names.sort();
            names
        };
        let active = clm
            .active_certificates(&alice, &all, &page)
            .await
            .expect("active");
        assert_eq!(
            names(active.items.into_iter().map(|c| c.common_name).collect()),
            ["a.example.com", "shared.example.com"]
        );
        let expiring = clm
            .expiring_certificates(&bob, 30, &page)
            .await
            .expect("expiring");
        assert_eq!(
            names(expiring.items.into_iter().map(|c| c.common_name).collect()),
            ["b.example.com", "shared.example.com"]
        );
        let summary = clm
            .certificate_summary(&alice, &all, &page)
            .await
            .expect("summary");
        assert_eq!(
            names(summary.items.into_iter().map(|c| c.common_name).collect()),
            ["a.example.com", "shared.example.com"]
        );
        // Asking for the other tenant's organization narrows to nothing.
        let other = ViewFilter {
            organization_ids: Some(vec![org_b]),
            ..ViewFilter::default()
        };
        let stolen = clm
            .active_certificates(&alice, &other, &page)
            .await
            .expect("narrowed");
        assert!(
            stolen
                .items
                .iter()
                .all(|c| c.organization_id != Some(org_b)),
            "{stolen:?}"
        );
        let users = clm
            .active_users_with_roles(&alice, &page)
            .await
            .expect("users");
        let ids: Vec<_> = users.items.iter().map(|u| u.id).collect();
        assert!(ids.contains(&alice_id) && !ids.contains(&bob_id), "{ids:?}");

        // The global administrator sees every tenant.
        let system = clm.system_actor();
        let everything = clm
            .expiring_certificates(&system, 30, &page)
            .await
            .expect("global");
        assert_eq!(everything.items.len(), 3, "{everything:?}");
    })
    .await;
}

#[tokio::test]
async fn views_refuse_actors_without_the_tables_read_permission() {
    on_both_keyed(security(), |clm| async move {
        let auditor_member = member(&clm, "aud", &[("audit", &["read"])]).await;
        let (org, auditor) = (auditor_member.org, auditor_member.actor);
        import(&clm, Some(org), "hidden.example.com", 10).await;
        let page = PageRequest::first(10);
        let all = ViewFilter::default();
        let denied = [
            clm.active_certificates(&auditor, &all, &page)
                .await
                .map(|_| ()),
            clm.expiring_certificates(&auditor, 30, &page)
                .await
                .map(|_| ()),
            clm.certificate_summary(&auditor, &all, &page)
                .await
                .map(|_| ()),
            clm.active_users_with_roles(&auditor, &page)
                .await
                .map(|_| ()),
        ];
        for outcome in denied {
            let err = outcome.expect_err("refused");
            assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_narrower_api_key_reads_only_the_views_its_scopes_allow() {
    on_both_keyed(security(), |clm| async move {
        let reader = member(
            &clm,
            "key",
            &[
                ("certificates", &["read"]),
                ("users", &["read"]),
                ("api_keys", &["create"]),
            ],
        )
        .await;
        import(&clm, Some(reader.org), "keyed.example.com", 10).await;
        let created = clm
            .create_api_key(
                &reader.actor,
                NewApiKey {
                    name: "users only".into(),
                    scopes: Some(Permissions::from_pairs(&[("users", &["read"])])),
                    ..Default::default()
                },
            )
            .await
            .expect("key");
        let key = clm
            .authenticate_api_key(created.key.expose())
            .await
            .expect("key actor");
        let page = PageRequest::first(10);
        let all = ViewFilter::default();
        for outcome in [
            clm.active_certificates(&key, &all, &page).await.map(|_| ()),
            clm.expiring_certificates(&key, 30, &page).await.map(|_| ()),
            clm.certificate_summary(&key, &all, &page).await.map(|_| ()),
        ] {
            let err = outcome.expect_err("the key holds no certificates:read");
            assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        }
        let users = clm
            .active_users_with_roles(&key, &page)
            .await
            .expect("users:read is in scope");
        assert!(users.items.iter().any(|u| u.id == reader.user));
        // The owner, unnarrowed, still reads the certificates.
        let own = clm
            .active_certificates(&reader.actor, &all, &page)
            .await
            .expect("owner");
        assert_eq!(own.items.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn expiring_days_outside_the_views_window_is_invalid_input_naming_days() {
    on_both_keyed(security(), |clm| async move {
        let reader_member = member(&clm, "days", READER).await;
        let (org, reader, _) = (reader_member.org, reader_member.actor, reader_member.user);
        import(&clm, Some(org), "soon.example.com", 5).await;
        import(&clm, Some(org), "later.example.com", 20).await;
        let page = PageRequest::first(10);
        for days in [0, 31, u32::MAX] {
            let err = clm
                .expiring_certificates(&reader, days, &page)
                .await
                .expect_err("refused");
            assert!(
                matches!(&err, clm::Error::InvalidInput { field, .. } if field == "days"),
                "{days}: {err}"
            );
        }
        // The window is honoured: 7 days sees the one due in 5, not in 20.
        let week = clm
            .expiring_certificates(&reader, 7, &page)
            .await
            .expect("a week");
        let names: Vec<_> = week
            .items
            .iter()
            .filter_map(|c| c.common_name.clone())
            .collect();
        assert_eq!(names, ["soon.example.com"]);
        // Through the API table the argument is checked by name too.
        let err = clm::api::call(
            &clm,
            Some(&reader),
            "expiring_certificates",
            serde_json::json!({"days": 5_000_000_000_u64}),
            None,
        )
        .await
        .err()
        .expect("refused");
        assert!(
            matches!(&err, clm::Error::InvalidInput { field, .. } if field == "days"),
            "{err}"
        );
    })
    .await;
}
