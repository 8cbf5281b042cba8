//! Attacks: names (see main.rs). Finding 6: a policy that restricts names
//! must check every name a certificate carries (CN, DNS, EMAIL, URI, IP,
//! subject emailAddress), normalized first, on every issuance path: issue,
//! dry run and CSR signing.

use clm::crypto::{DistinguishedName, KeyAlgorithm, KeyPair, PemLabel, build_csr, der_to_pem};
use clm::model::{
    Certificate, CertificateId, CertificateKind, OrganizationId, Policy, PolicyRules,
    SubjectAlternativeName,
};
use clm::service::access::NewOrganization;
use clm::service::authorities::NewCertificateAuthority;
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource};
use clm::service::policies::{NewPolicy, PolicyUpdate};
use clm::store::certificates::Certificates;
use clm::store::{Filter, count};
use clm::{Clm, Error, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, unique};

// ------------------------------------------------------------------ helpers

pub(crate) fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

/// An organization with its own root CA and one policy with `rules`.
pub(crate) struct Tenant {
    pub org: OrganizationId,
    pub ca: CertificateId,
    pub policy: Policy,
}

/// Policy rules from JSON, without validation (so a test can also hand the
/// service rules it must refuse).
pub(crate) fn rules(json: &str) -> PolicyRules {
    serde_json::from_str(json).unwrap_or_else(|err| panic!("policy rules {json}: {err}"))
}

pub(crate) fn example_rules() -> PolicyRules {
    rules(
        r#"{"max_validity_days": 365, "allowed_domains": ["example.com"], "allow_subdomains": true}"#,
    )
}

pub(crate) async fn tenant(clm: &Clm, rules: PolicyRules) -> Tenant {
    let system = clm.system_actor();
    let org = clm
        .create_organization(
            &system,
            NewOrganization {
                org_code: unique("names"),
                name: "Names Org".into(),
                ..Default::default()
            },
        )
        .await
        .expect("create organization")
        .id;
    let ca = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: DistinguishedName::common_name(unique("Names Root")),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(3650),
                organization_id: Some(org),
                ..Default::default()
            },
        )
        .await
        .expect("create root")
        .certificate
        .id;
    let policy = clm
        .create_policy(
            &system,
            NewPolicy {
                policy_code: unique("names-pol"),
                name: "Names policy".into(),
                rules,
                organization_id: Some(org),
                ..NewPolicy::default()
            },
        )
        .await
        .expect("create policy");
    Tenant { org, ca, policy }
}

pub(crate) fn request(
    tenant: &Tenant,
    subject: DistinguishedName,
    sans: Vec<SubjectAlternativeName>,
) -> IssueRequest {
    IssueRequest {
        issuer_id: tenant.ca,
        policy_id: Some(tenant.policy.id),
        subject,
        sans,
        kind: CertificateKind::TlsServer,
        validity_days: 90,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: Some(tenant.org),
    }
}

/// The same request, its names and key carried by a CSR.
pub(crate) fn csr_request(tenant: &Tenant, key: &KeyPair, template: &IssueRequest) -> IssueRequest {
    let csr = build_csr(&template.subject, &template.sans, key).expect("build CSR");
    IssueRequest {
        subject: DistinguishedName::default(),
        sans: Vec::new(),
        key: KeySource::Csr(der_to_pem(PemLabel::CertificateRequest, &csr)),
        ..request(tenant, DistinguishedName::default(), Vec::new())
    }
}

pub(crate) fn issued(outcome: IssuanceOutcome) -> Certificate {
    outcome.into_certificate().expect("issued, not pending")
}

pub(crate) async fn certificate_count(clm: &Clm) -> i64 {
    let mut conn = clm.databases().secure.acquire().await.expect("conn");
    count::<Certificates>(&mut conn.conn(), &Filter::new())
        .await
        .expect("count")
}

fn dns(name: &str) -> SubjectAlternativeName {
    SubjectAlternativeName::Dns(name.into())
}

fn cn(name: &str) -> DistinguishedName {
    DistinguishedName::common_name(name)
}

/// A PolicyViolation that names `rule` with `needle` in its detail.
fn assert_violation(err: &Error, rule: &str, needle: &str, path: &str) {
    assert_eq!(err.code(), ErrorCode::PolicyViolation, "{path}: {err}");
    let Error::PolicyViolation { violations } = err else {
        panic!("{path}: not a PolicyViolation: {err}");
    };
    assert!(
        violations
            .iter()
            .any(|v| v.rule == rule && v.message.contains(needle)),
        "{path}: no {rule} violation naming {needle:?} in {violations:?}"
    );
}

/// `subject` + `sans` are refused under `rule` (naming `needle`) by the dry
/// run, by issuance, and by CSR signing, and nothing is written.
async fn assert_refused_everywhere(
    clm: &Clm,
    tenant: &Tenant,
    subject: DistinguishedName,
    sans: Vec<SubjectAlternativeName>,
    rule: &str,
    needle: &str,
) {
    let system = clm.system_actor();
    let before = certificate_count(clm).await;
    let template = request(tenant, subject, sans);

    let report = clm
        .dry_run_issuance(&system, template.clone())
        .await
        .unwrap_or_else(|err| panic!("dry run of {needle:?}: {err}"));
    assert!(
        !report.allowed,
        "dry run allowed {needle:?}: {:?}",
        report.rules
    );
    assert!(
        report
            .rules
            .iter()
            .any(|r| r.rule == rule && !r.passed && r.detail.contains(needle)),
        "dry run: no failed {rule} naming {needle:?} in {:?}",
        report.rules
    );

    let err = clm
        .issue_certificate(&system, template.clone())
        .await
        .expect_err(&format!("issuing {needle:?} must be refused"));
    assert_violation(&err, rule, needle, "issue");

    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let err = clm
        .issue_certificate(&system, csr_request(tenant, &key, &template))
        .await
        .expect_err(&format!("signing a CSR for {needle:?} must be refused"));
    assert_violation(&err, rule, needle, "csr");

    assert_eq!(
        certificate_count(clm).await,
        before,
        "a refusal wrote a certificate"
    );
}

// ------------------------------------------------------------------ bypasses

#[tokio::test]
async fn names_email_san_outside_allowed_domains_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            cn("www.example.com"),
            vec![
                dns("www.example.com"),
                SubjectAlternativeName::Email("ceo@evil.com".into()),
            ],
            "allowed_domains",
            "evil.com",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_uri_san_outside_allowed_domains_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            cn("www.example.com"),
            vec![
                dns("www.example.com"),
                SubjectAlternativeName::Uri("https://login.evil.com/callback".into()),
            ],
            "allowed_domains",
            "login.evil.com",
        )
        .await;
        // A URI without a host names nothing the policy covers.
        assert_refused_everywhere(
            &clm,
            &t,
            cn("www.example.com"),
            vec![SubjectAlternativeName::Uri("file:///etc/passwd".into())],
            "allowed_domains",
            "file:///etc/passwd",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_ip_san_without_allowed_ip_ranges_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            cn("www.example.com"),
            vec![
                dns("www.example.com"),
                SubjectAlternativeName::Ip("8.8.8.8".parse().expect("ip")),
            ],
            "allowed_ip_ranges",
            "8.8.8.8",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_subject_email_address_outside_allowed_domains_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            DistinguishedName {
                common_name: Some("www.example.com".into()),
                email: Some("ceo@evil.com".into()),
                ..Default::default()
            },
            vec![dns("www.example.com")],
            "allowed_domains",
            "evil.com",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_dotless_common_name_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            cn("intranet"),
            vec![dns("www.example.com")],
            "allowed_domains",
            "intranet",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_trailing_dot_common_name_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            cn("evil.com."),
            vec![dns("www.example.com")],
            "allowed_domains",
            "evil.com",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_common_name_with_empty_label_is_refused() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &t,
            cn("www..example.com"),
            vec![dns("www.example.com")],
            "allowed_domains",
            "www..example.com",
        )
        .await;
    })
    .await;
}

// ------------------------------------------------------------------ wildcards

#[tokio::test]
async fn names_wildcards_only_as_the_whole_leftmost_dns_label() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(
            &clm,
            rules(
                r#"{"max_validity_days": 365, "allowed_domains": ["example.com"],
                    "allow_subdomains": true, "allow_wildcards": true}"#,
            ),
        )
        .await;
        let system = clm.system_actor();
        let ok = issued(
            clm.issue_certificate(
                &system,
                request(&t, cn("*.example.com"), vec![dns("*.example.com")]),
            )
            .await
            .expect("a whole left-most wildcard label is allowed"),
        );
        assert_eq!(ok.subject_alternative_names.0, vec![dns("*.example.com")]);

        assert_refused_everywhere(
            &clm,
            &t,
            cn("f*o.example.com"),
            vec![dns("www.example.com")],
            "allowed_domains",
            "f*o.example.com",
        )
        .await;
        // A mailbox is on one host: a wildcard domain is not an address.
        let before = certificate_count(&clm).await;
        let err = clm
            .issue_certificate(
                &system,
                request(
                    &t,
                    cn("www.example.com"),
                    vec![SubjectAlternativeName::Email("admin@*.example.com".into())],
                ),
            )
            .await
            .expect_err("a wildcard e-mail domain must be refused");
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
        assert!(
            err.to_string().contains("subject_alternative_names[0]"),
            "{err}"
        );
        assert_eq!(certificate_count(&clm).await, before);
        assert_refused_everywhere(
            &clm,
            &t,
            cn("www.example.com"),
            vec![SubjectAlternativeName::Uri("https://*.example.com/".into())],
            "allowed_domains",
            "*.example.com",
        )
        .await;

        // Without allow_wildcards a wildcard CN is refused too.
        let strict = tenant(&clm, example_rules()).await;
        assert_refused_everywhere(
            &clm,
            &strict,
            cn("*.example.com"),
            vec![dns("www.example.com")],
            "allow_wildcards",
            "*.example.com",
        )
        .await;
    })
    .await;
}

// ------------------------------------------------------------------ IP ranges

#[tokio::test]
async fn names_ip_sans_need_allowed_ip_ranges_to_cover_them() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(
            &clm,
            rules(
                r#"{"max_validity_days": 365, "allowed_domains": ["example.com"],
                    "allow_subdomains": true,
                    "allowed_ip_ranges": ["10.0.0.0/8", "2001:db8::/32"]}"#,
            ),
        )
        .await;
        let system = clm.system_actor();
        let ip = |text: &str| SubjectAlternativeName::Ip(text.parse().expect("ip"));
        let ok = issued(
            clm.issue_certificate(
                &system,
                request(
                    &t,
                    cn("www.example.com"),
                    vec![dns("www.example.com"), ip("10.1.2.3"), ip("2001:db8::1")],
                ),
            )
            .await
            .expect("IPs inside the ranges are allowed"),
        );
        assert_eq!(ok.subject_alternative_names.0.len(), 3);

        for outside in ["11.0.0.1", "2001:db9::1", "::ffff:10.0.0.1"] {
            assert_refused_everywhere(
                &clm,
                &t,
                cn("www.example.com"),
                vec![dns("www.example.com"), ip(outside)],
                "allowed_ip_ranges",
                outside,
            )
            .await;
        }
        // An IP address as CN is held to the same ranges.
        assert_refused_everywhere(
            &clm,
            &t,
            cn("192.168.1.1"),
            vec![dns("www.example.com")],
            "allowed_ip_ranges",
            "192.168.1.1",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn names_allowed_ip_ranges_are_validated_on_create_and_update() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        for (bad, index) in [
            (r#"["10.0.0.0/8", "10.0.0.0/33"]"#, 1),
            (r#"["10.0.0.1/8"]"#, 0),
            (r#"["2001:db8::/32", "intranet"]"#, 1),
            (r#"["10.0.0.0"]"#, 0),
        ] {
            let bad_rules = rules(&format!(
                r#"{{"max_validity_days": 365, "allowed_ip_ranges": {bad}}}"#
            ));
            let err = clm
                .create_policy(
                    &system,
                    NewPolicy {
                        policy_code: unique("bad-ip"),
                        name: "Bad ranges".into(),
                        rules: bad_rules.clone(),
                        ..NewPolicy::default()
                    },
                )
                .await
                .expect_err(&format!("{bad} must be refused"));
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{err}");
            let field = format!("policy_rules.allowed_ip_ranges[{index}]");
            assert!(
                err.to_string().contains(&field),
                "{bad}: {err} does not name {field}"
            );

            let t = tenant(&clm, example_rules()).await;
            let err = clm
                .update_policy(
                    &system,
                    t.policy.id,
                    PolicyUpdate {
                        rules: Some(bad_rules),
                        ..Default::default()
                    },
                )
                .await
                .expect_err(&format!("{bad} must be refused on update"));
            assert!(
                err.to_string().contains(&field),
                "{bad}: {err} does not name {field}"
            );
            let unchanged = clm.get_policy(&system, t.policy.id).await.expect("policy");
            assert_eq!(unchanged.policy_rules.0, example_rules());
            assert_eq!(unchanged.version, t.policy.version);
        }
    })
    .await;
}

// ------------------------------------------------------------------ normalization

#[tokio::test]
async fn names_are_normalized_before_matching() {
    on_both_keyed(security(), |clm| async move {
        let t = tenant(&clm, example_rules()).await;
        let system = clm.system_actor();
        // Upper case, a trailing dot and U-labels name hosts under example.com.
        let template = request(
            &t,
            DistinguishedName {
                common_name: Some("Shop.Example.COM.".into()),
                email: Some("Admin@Mail.EXAMPLE.com".into()),
                ..Default::default()
            },
            vec![
                dns("WWW.Example.COM."),
                dns("bücher.example.com"),
                SubjectAlternativeName::Email("ops@EXAMPLE.COM".into()),
                SubjectAlternativeName::Uri("https://API.Example.com:8443/v1".into()),
            ],
        );
        let report = clm
            .dry_run_issuance(&system, template.clone())
            .await
            .expect("dry run");
        assert!(report.allowed, "{:?}", report.rules);
        let certificate = issued(
            clm.issue_certificate(&system, template)
                .await
                .expect("normalized names are within the policy"),
        );
        // What is signed is the normalized DNS name (A-labels, no trailing dot).
        let sans = &certificate.subject_alternative_names.0;
        assert!(sans.contains(&dns("www.example.com")), "{sans:?}");
        assert!(sans.contains(&dns("xn--bcher-kva.example.com")), "{sans:?}");

        // A U-label outside the domains is compared as its A-label.
        assert_refused_everywhere(
            &clm,
            &t,
            cn("bücher.evil.com"),
            vec![dns("www.example.com")],
            "allowed_domains",
            "xn--bcher-kva.evil.com",
        )
        .await;
        // A host name that is not valid IDNA is refused, never matched.
        let before = certificate_count(&clm).await;
        for bad in ["xn--a.example.com", "a..example.com", "-x.example.com"] {
            let err = clm
                .issue_certificate(&system, request(&t, cn("www.example.com"), vec![dns(bad)]))
                .await
                .expect_err(&format!("{bad} must be refused"));
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{bad}: {err}");
            assert!(
                err.to_string().contains("subject_alternative_names[0]"),
                "{bad}: {err}"
            );
        }
        assert_refused_everywhere(
            &clm,
            &t,
            cn("xn--a.example.com"),
            vec![dns("www.example.com")],
            "allowed_domains",
            "xn--a.example.com",
        )
        .await;
        assert_eq!(certificate_count(&clm).await, before);
    })
    .await;
}
