//! Attacks: crls (see main.rs). Signing a CRL uses a CA's key and reading
//! one reveals what a CA revoked: the tenant next door, a narrower API key
//! and a member without `authorities:sign_crl` get nothing, a revoked
//! session yields no actor, and a refusal uses up no CRL number.

use chrono::Utc;
use clm::crypto::DistinguishedName;
use clm::crypto::SecretString;
use clm::model::Permissions;
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::{LoginContext, NewApiKey};
use clm::{Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};
use crate::members::member;

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

const SIGNER: &[(&str, &[&str])] = &[
    ("authorities", &["create", "read", "sign_crl"]),
    ("certificates", &["create", "read", "revoke"]),
    ("api_keys", &["create"]),
];

fn refused<T: std::fmt::Debug>(result: clm::Result<T>, what: &str) {
    match result {
        Ok(value) => panic!("{what}: allowed, got {value:?}"),
        Err(err) => assert!(
            matches!(
                err.code(),
                ErrorCode::NotFound | ErrorCode::PermissionDenied
            ),
            "{what}: {err}"
        ),
    }
}

async fn partitioned_ca(
    clm: &Clm,
    actor: &clm::Actor,
    org: clm::model::OrganizationId,
) -> clm::model::CertificateId {
    clm.create_root_ca(
        actor,
        NewCertificateAuthority {
            subject: DistinguishedName::common_name("Tenant CRL Root"),
            organization_id: Some(org),
            crl_distribution_points: vec!["http://crl.example.test/tenant.crl".into()],
            crl_partitions: Some(2),
            delta_crls: true,
            ..Default::default()
        },
    )
    .await
    .expect("tenant CA")
    .certificate
    .id
}

#[tokio::test]
async fn crls_other_tenants_narrow_keys_and_readers_cannot_sign_or_read() {
    on_both_keyed(security(), |clm| async move {
        let a = member(&clm, "crl-a", SIGNER).await;
        let b = member(&clm, "crl-b", SIGNER).await;
        let ca = partitioned_ca(&clm, &a.actor, a.org).await;
        let first = clm
            .generate_crl(&a.actor, ca, None)
            .await
            .expect("A signs its CRL");

        // The tenant next door: neither signing nor reading, in any scope.
        refused(clm.generate_crl(&b.actor, ca, None).await, "B full");
        refused(
            clm.generate_scoped_crl(&b.actor, ca, Some(0), false, None)
                .await,
            "B partition",
        );
        refused(
            clm.generate_scoped_crl(&b.actor, ca, None, true, None)
                .await,
            "B delta",
        );
        refused(clm.latest_crl(&b.actor, ca, None, false).await, "B reads");
        refused(
            clm.open_latest_crl(&b.actor, ca, None, false).await,
            "B opens the chunked reader",
        );

        // A's own key narrowed to reading certificates: reads, never signs.
        let key = clm
            .create_api_key(
                &a.actor,
                NewApiKey {
                    name: "reader".into(),
                    scopes: Some(Permissions::from_pairs(&[("certificates", &["read"])])),
                    expires_at: Some(Utc::now() + chrono::Duration::days(1)),
                    organization_id: Some(a.org),
                },
            )
            .await
            .expect("narrow key");
        let narrow = clm
            .authenticate_api_key(key.key.expose())
            .await
            .expect("key actor");
        refused(
            clm.generate_scoped_crl(&narrow, ca, Some(1), false, None)
                .await,
            "narrow key signs",
        );
        let served = clm
            .latest_crl(&narrow, ca, None, false)
            .await
            .expect("a reader reads the CRL");
        assert_eq!(served.crl_number, first.crl_number);

        // A member of A who may read and revoke but not sign CRLs.
        let reader = clm::Actor::with_permissions(
            clm::model::UserId::new(),
            Permissions::from_pairs(&[("certificates", &["read", "revoke"])]),
            vec![a.org],
        );
        let err = clm
            .generate_crl(&reader, ca, None)
            .await
            .expect_err("a reader signs");
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        refused(
            clm.generate_scoped_crl(&reader, ca, None, true, None).await,
            "a reader signs a delta",
        );
        clm.latest_crl(&reader, ca, None, false)
            .await
            .expect("a reader reads");

        // A signer's session signs until it is revoked; then its token
        // yields no actor to sign with.
        let system = clm.system_actor();
        let password = SecretString::new(format!("Crl-{}-pw-9", unique("x")));
        clm.set_password(&system, a.user, password.clone())
            .await
            .expect("password");
        let user = clm.get_user(&system, a.user).await.expect("user");
        let login = clm
            .authenticate(&user.username, password, None, LoginContext::default())
            .await
            .expect("login");
        let session = clm
            .validate_session(login.token.expose())
            .await
            .expect("session");
        let by_session = clm
            .generate_scoped_crl(&session, ca, Some(1), false, None)
            .await
            .expect("a live session signs");
        clm.revoke_user_sessions(&system, a.user)
            .await
            .expect("revoke");
        let after = clm.validate_session(login.token.expose()).await;
        assert_eq!(
            after.expect_err("a revoked session").code(),
            ErrorCode::Authentication
        );

        // No refusal used up a number: A's next CRL follows the last signed.
        let next = clm
            .generate_scoped_crl(&a.actor, ca, Some(0), false, None)
            .await
            .expect("A signs a partition");
        assert_eq!(next.crl_number, by_session.crl_number + 1);
        assert_eq!(by_session.crl_number, first.crl_number + 1);
    })
    .await;
}
