//! Attacks: inventory_tenancy (see main.rs). Finding 9 of issue 11: the
//! inventory's uniqueness, de-duplication, issuer links and CRLs must hold
//! per organization. Every attack runs through the public API as users of
//! two organizations, each holding an operator-like role of its own
//! organization.

use chrono::{Duration, Utc};
use clm::crypto::{
    CertificateTemplate, DistinguishedName, Issuer, KeyAlgorithm, KeyPair, ParsedCertificate,
    SecretString, build_certificate, parse_certificate_der,
};
use clm::model::{
    Certificate, CertificateId, CertificateKind, OrganizationId, PolicyRules, RevocationReason,
    SubjectAlternativeName,
};
use clm::service::access::ROLE_APPROVER;
use clm::service::authorities::NewCertificateAuthority;
use clm::service::identity::NewApiKey;
use clm::service::identity::NewUser;
use clm::service::inventory::{CertificateSearch, ImportOptions, ImportReport, ImportRequest};
use clm::service::issuance::{IssuanceOutcome, IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::store::{PageRequest, Value};
use clm::{Actor, Clm, ErrorCode, SecuritySettings};

use crate::common::{on_both_keyed, raw, unique};
use crate::members::{Member, member};

fn security() -> SecuritySettings {
    SecuritySettings {
        cpu_jobs: 2,
        ..SecuritySettings::default()
    }
}

/// What the built-in OPERATOR may do with certificates and CRLs.
const OPERATOR_LIKE: &[(&str, &[&str])] = &[
    (
        "certificates",
        &[
            "create", "read", "update", "revoke", "import", "renew", "export", "delete",
        ],
    ),
    ("authorities", &["read", "sign_crl"]),
];

/// An organization and one member holding an operator-like role scoped to it.
type Tenant = Member;

async fn tenant(clm: &Clm, tag: &str) -> Tenant {
    member(clm, tag, OPERATOR_LIKE).await
}

struct Ca {
    key: KeyPair,
    cert: ParsedCertificate,
}

fn root(cn: &str) -> Ca {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let template = CertificateTemplate::new(
        DistinguishedName::common_name(cn),
        CertificateKind::RootCa,
        now - Duration::days(1),
        now + Duration::days(3650),
    );
    let der = build_certificate(&template, &key.public_key_der(), Issuer::SelfSigned(&key))
        .expect("root");
    Ca {
        cert: parse_certificate_der(&der).expect("parse root"),
        key,
    }
}

/// A TLS server certificate for `cn` (also its DNS SAN) signed by `ca`
/// (outside clm).
fn leaf(ca: &Ca, cn: &str) -> ParsedCertificate {
    leaf_with_sans(ca, cn, vec![SubjectAlternativeName::Dns(cn.to_string())])
}

fn leaf_with_sans(ca: &Ca, cn: &str, sans: Vec<SubjectAlternativeName>) -> ParsedCertificate {
    let key = KeyPair::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let now = Utc::now();
    let mut template = CertificateTemplate::new(
        DistinguishedName::common_name(cn),
        CertificateKind::TlsServer,
        now - Duration::hours(1),
        now + Duration::days(90),
    );
    template.subject_alternative_names = sans;
    let issuer = Issuer::Ca {
        certificate: &ca.cert,
        key: &ca.key,
    };
    let der = build_certificate(&template, &key.public_key_der(), issuer).expect("leaf");
    parse_certificate_der(&der).expect("parse leaf")
}

async fn import_into(
    clm: &Clm,
    actor: &Actor,
    org: Option<OrganizationId>,
    pem: &str,
) -> clm::Result<ImportReport> {
    clm.import_certificates(
        actor,
        ImportRequest {
            data: pem.as_bytes().to_vec(),
            organization_id: org,
            ..Default::default()
        },
    )
    .await
}

fn only_imported(report: &ImportReport) -> Certificate {
    assert_eq!(
        report.imported.len(),
        1,
        "expected exactly one imported row: {report:?}"
    );
    assert!(
        report.already_present.is_empty(),
        "nothing may be reported as already present: {report:?}"
    );
    report.imported[0].clone()
}

/// Imports `ca` with its private key into `org`, so clm can sign its CRLs.
async fn import_ca_with_key(
    clm: &Clm,
    actor: &Actor,
    org: Option<OrganizationId>,
    ca: &Ca,
) -> Certificate {
    let report = clm
        .import_certificates(
            actor,
            ImportRequest {
                data: ca.cert.pem.clone().into_bytes(),
                private_key_pem: Some(SecretString::new(
                    ca.key.to_pkcs8_pem().expose().to_string(),
                )),
                organization_id: org,
                ..Default::default()
            },
        )
        .await
        .expect("import CA with key");
    only_imported(&report)
}

async fn visible_ids(clm: &Clm, actor: &Actor) -> Vec<CertificateId> {
    found_ids(clm, actor, CertificateSearch::default()).await
}

/// The ids `actor` finds with `search` (one page of up to 500).
async fn found_ids(clm: &Clm, actor: &Actor, search: CertificateSearch) -> Vec<CertificateId> {
    clm.search_certificates(actor, &search, &PageRequest::first(500))
        .await
        .expect("search")
        .items
        .iter()
        .map(|c| c.id)
        .collect()
}

/// B holds a certificate; A imports the same (public) certificate. Before
/// the fix A's import answered with B's row id as "already present": A
/// learned that B holds it and got nothing. Now A gets a row of its own and
/// learns nothing about B.
#[tokio::test]
async fn inventory_tenancy_import_does_not_reveal_other_orgs_certificate() {
    on_both_keyed(security(), |clm| async move {
        let (a, b) = (tenant(&clm, "a").await, tenant(&clm, "b").await);
        let ca = root("Reveal Root");
        let cert = leaf(&ca, "shared-service.example.com");
        let bs = only_imported(
            &import_into(&clm, &b.actor, Some(b.org), &cert.pem)
                .await
                .expect("B imports"),
        );
        let report = import_into(&clm, &a.actor, Some(a.org), &cert.pem)
            .await
            .expect("A imports the same certificate");
        assert!(
            !report.already_present.contains(&bs.id),
            "A's import revealed B's certificate id: {report:?}"
        );
        let as_ = only_imported(&report);
        assert_ne!(as_.id, bs.id);
        assert_eq!(as_.organization_id, Some(a.org));
        assert_eq!(as_.fingerprint_sha256, bs.fingerprint_sha256);
        // Each sees its own row only; B's row is untouched.
        assert_eq!(visible_ids(&clm, &a.actor).await, vec![as_.id]);
        assert_eq!(visible_ids(&clm, &b.actor).await, vec![bs.id]);
        let b_row = clm.get_certificate(&b.actor, bs.id).await.expect("B's row");
        assert_eq!(b_row.organization_id, Some(b.org));
        assert_eq!(
            clm.get_certificate(&a.actor, bs.id)
                .await
                .map(|c| c.id)
                .map_err(|e| e.code()),
            Err(ErrorCode::NotFound)
        );
        // Importing again within A's organization deduplicates (to A's row).
        let again = import_into(&clm, &a.actor, Some(a.org), &cert.pem)
            .await
            .expect("A imports again");
        assert!(again.imported.is_empty());
        assert_eq!(again.already_present, vec![as_.id]);
    })
    .await;
}

/// A imports B's public certificate first. Before the fix B could then not
/// import its own certificate: the import answered "already present" with a
/// row B cannot see. Now B's import stores B's row.
#[tokio::test]
async fn inventory_tenancy_import_first_does_not_preempt_other_org() {
    on_both_keyed(security(), |clm| async move {
        let (a, b) = (tenant(&clm, "a").await, tenant(&clm, "b").await);
        let ca = root("Preempt Root");
        let cert = leaf(&ca, "b-only.example.com");
        let as_ = only_imported(
            &import_into(&clm, &a.actor, Some(a.org), &cert.pem)
                .await
                .expect("A imports B's public certificate first"),
        );
        let report = import_into(&clm, &b.actor, Some(b.org), &cert.pem)
            .await
            .expect("B imports its own certificate");
        let bs = only_imported(&report);
        assert_ne!(bs.id, as_.id);
        assert_eq!(bs.organization_id, Some(b.org));
        let got = clm
            .get_certificate(&b.actor, bs.id)
            .await
            .expect("B reads its row");
        assert_eq!(got.fingerprint_sha256, cert.fingerprint_sha256);
        assert_eq!(visible_ids(&clm, &b.actor).await, vec![bs.id]);
    })
    .await;
}

/// Shared rows (no organization) form their own scope: importing the same
/// certificate as shared twice, even at once, stores one row (NULL must not
/// count as distinct in the uniqueness rule), and an organization importing
/// it gets its own row next to the shared one.
#[tokio::test]
async fn inventory_tenancy_shared_scope_is_one_scope() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let a = tenant(&clm, "a").await;
        let ca = root("Shared Scope Root");
        let cert = leaf(&ca, "everyone.example.com");
        let (first, second) = tokio::join!(
            import_into(&clm, &system, None, &cert.pem),
            import_into(&clm, &system, None, &cert.pem),
        );
        let (first, second) = (first.expect("first"), second.expect("second"));
        let stored: Vec<CertificateId> = first
            .imported
            .iter()
            .chain(second.imported.iter())
            .map(|c| c.id)
            .collect();
        assert_eq!(stored.len(), 1, "one shared row: {first:?} {second:?}");
        let shared_id = stored[0];
        assert_eq!(
            first
                .already_present
                .iter()
                .chain(second.already_present.iter())
                .copied()
                .collect::<Vec<_>>(),
            vec![shared_id]
        );
        let again = import_into(&clm, &system, None, &cert.pem)
            .await
            .expect("again");
        assert_eq!(again.already_present, vec![shared_id]);
        // A sees the shared row, and may still hold its own copy.
        let own = only_imported(
            &import_into(&clm, &a.actor, Some(a.org), &cert.pem)
                .await
                .expect("A imports its copy"),
        );
        assert_ne!(own.id, shared_id);
        let mut seen = visible_ids(&clm, &a.actor).await;
        seen.sort();
        let mut expected = vec![shared_id, own.id];
        expected.sort();
        assert_eq!(seen, expected);
    })
    .await;
}

/// B's CA (with its key) is in clm; A imports a certificate that CA signed.
/// Before the fix A's row was linked to B's CA, so A's revocation landed on
/// B's CRL. Now the link stays within what A may see, and B's CRL stays
/// B's.
#[tokio::test]
async fn inventory_tenancy_revocation_never_lands_on_other_orgs_crl() {
    on_both_keyed(security(), |clm| async move {
        let (a, b) = (tenant(&clm, "a").await, tenant(&clm, "b").await);
        let system = clm.system_actor();
        let ca = root("Tenant B Issuing Root");
        let b_ca = import_ca_with_key(&clm, &system, Some(b.org), &ca).await;
        let victim = leaf(&ca, "issued-by-b.example.com");
        let as_ = only_imported(
            &import_into(&clm, &a.actor, Some(a.org), &victim.pem)
                .await
                .expect("A imports a certificate of B's CA"),
        );
        assert_eq!(
            as_.issuer_certificate_id, None,
            "A's certificate was linked to B's CA"
        );
        let chain = clm
            .certificate_chain(&a.actor, as_.id)
            .await
            .expect("chain");
        assert_eq!(chain.len(), 1);
        clm.revoke_certificate(&a.actor, as_.id, RevocationReason::KeyCompromise, None)
            .await
            .expect("A revokes its own row");
        let crl = clm
            .generate_crl(&b.actor, b_ca.id, None)
            .await
            .expect("B signs its CRL");
        assert_eq!(crl.entry_count, 0, "A's revocation landed on B's CRL");
        // B's own certificates still land on B's CRL.
        let own = only_imported(
            &import_into(
                &clm,
                &b.actor,
                Some(b.org),
                &leaf(&ca, "b-own.example.com").pem,
            )
            .await
            .expect("B imports"),
        );
        assert_eq!(own.issuer_certificate_id, Some(b_ca.id));
        clm.revoke_certificate(&b.actor, own.id, RevocationReason::Superseded, None)
            .await
            .expect("B revokes");
        let crl = clm
            .generate_crl(&b.actor, b_ca.id, None)
            .await
            .expect("CRL");
        assert_eq!(crl.entry_count, 1);
        let served = clm
            .latest_crl(&b.actor, b_ca.id, None, false)
            .await
            .expect("B's CRL");
        assert!(crl_lists(&served, &own));
    })
    .await;
}

/// Rows linked across organizations before the fix (made here with SQL, as
/// the old import made them), and an imported copy of a shared CA's
/// certificate: revoking them must not put them on a CRL of a CA outside
/// their own scope. Otherwise A can revoke, on the CRL every relying party
/// reads, a certificate that B holds (same serial), by importing a public
/// copy and revoking it.
#[tokio::test]
async fn inventory_tenancy_crl_lists_only_its_own_scope() {
    on_both_keyed(security(), |clm| async move {
        let (a, b) = (tenant(&clm, "a").await, tenant(&clm, "b").await);
        let system = clm.system_actor();
        // B's CA and a row of A linked to it as the old import linked it.
        let ca = root("Tenant B Old Link Root");
        let b_ca = import_ca_with_key(&clm, &system, Some(b.org), &ca).await;
        let old = only_imported(
            &import_into(
                &clm,
                &a.actor,
                Some(a.org),
                &leaf(&ca, "old-link.example.com").pem,
            )
            .await
            .expect("A imports"),
        );
        {
            let mut conn = clm.databases().secure.acquire().await.expect("conn");
            let changed = raw(
                &mut conn.conn(),
                "UPDATE certificates SET issuer_certificate_id = $1 WHERE id = $2",
                vec![
                    Value::Id(clm::model::ResourceId(b_ca.id.as_uuid())),
                    Value::Id(clm::model::ResourceId(old.id.as_uuid())),
                ],
            )
            .await
            .expect("link across organizations");
            assert_eq!(changed, 1);
        }
        clm.revoke_certificate(&a.actor, old.id, RevocationReason::KeyCompromise, None)
            .await
            .expect("A revokes");
        let crl = clm
            .generate_crl(&b.actor, b_ca.id, None)
            .await
            .expect("CRL");
        assert_eq!(
            crl.entry_count, 0,
            "a cross-organization link put A's revocation on B's CRL"
        );

        // A shared CA (global administrator's, with key) and B's copy of a
        // certificate it signed: linked (the chain is visible) but B's
        // revocation of its imported copy is not the shared CA's to list.
        let shared = root("Shared Issuing Root");
        let shared_ca = import_ca_with_key(&clm, &system, None, &shared).await;
        let public = leaf(&shared, "someone-elses.example.com");
        let copy = only_imported(
            &import_into(&clm, &b.actor, Some(b.org), &public.pem)
                .await
                .expect("B imports a copy"),
        );
        assert_eq!(copy.issuer_certificate_id, Some(shared_ca.id));
        clm.revoke_certificate(&b.actor, copy.id, RevocationReason::KeyCompromise, None)
            .await
            .expect("B revokes its copy");
        // The shared scope's own row (imported by the administrator) does land.
        let theirs = only_imported(
            &import_into(&clm, &system, None, &public.pem)
                .await
                .expect("shared copy"),
        );
        assert_eq!(theirs.issuer_certificate_id, Some(shared_ca.id));
        clm.revoke_certificate(&system, theirs.id, RevocationReason::Superseded, None)
            .await
            .expect("administrator revokes");
        let crl = clm
            .generate_crl(&system, shared_ca.id, None)
            .await
            .expect("shared CRL");
        assert_eq!(crl.entry_count, 1);
        let served = clm
            .latest_crl(&system, shared_ca.id, None, false)
            .await
            .expect("shared CRL as served");
        assert!(crl_lists(&served, &theirs));
    })
    .await;
}

/// Seed conformance: `certificates.workflow_id` (the summary's reference to
/// `workflows.id`) names the workflow that approved the certificate. Before
/// the fix it was never set.
#[tokio::test]
async fn inventory_tenancy_approved_certificate_records_its_workflow() {
    on_both_keyed(security(), |clm| async move {
        let system = clm.system_actor();
        let a = tenant(&clm, "a").await;
        let ca = clm
            .create_root_ca(
                &system,
                NewCertificateAuthority {
                    subject: DistinguishedName::common_name(unique("Approval Root")),
                    key_algorithm: KeyAlgorithm::EcdsaP256,
                    validity_days: Some(3650),
                    organization_id: Some(a.org),
                    ..Default::default()
                },
            )
            .await
            .expect("CA");
        let policy = clm
            .create_policy(
                &system,
                NewPolicy {
                    policy_code: unique("approve"),
                    name: "Needs approval".into(),
                    rules: PolicyRules {
                        max_validity_days: 365,
                        allowed_domains: vec!["example.com".into()],
                        allow_subdomains: true,
                        require_approval: true,
                        ..PolicyRules::default()
                    },
                    organization_id: Some(a.org),
                    ..NewPolicy::default()
                },
            )
            .await
            .expect("policy");
        let requested = clm
            .issue_certificate(
                &a.actor,
                IssueRequest {
                    issuer_id: ca.certificate.id,
                    policy_id: Some(policy.id),
                    subject: DistinguishedName::common_name("approved.example.com"),
                    sans: vec![SubjectAlternativeName::Dns("approved.example.com".into())],
                    kind: CertificateKind::TlsServer,
                    validity_days: 30,
                    key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                    owner_user_id: None,
                    organization_id: Some(a.org),
                },
            )
            .await
            .expect("request");
        let IssuanceOutcome::Pending { request } = requested else {
            panic!("the policy requires approval: {requested:?}");
        };
        let instance_id = request.workflow_instance_id.expect("routed to a workflow");
        let approver_name = unique("approver");
        let approver = clm
            .create_user(
                &system,
                NewUser {
                    username: approver_name.clone(),
                    email: format!("{approver_name}@example.com"),
                    display_name: None,
                    password: None,
                    organization_id: Some(a.org),
                },
            )
            .await
            .expect("approver");
        let role = clm
            .get_role_by_code(&system, ROLE_APPROVER)
            .await
            .expect("APPROVER");
        clm.assign_role(&system, approver.id, role.id)
            .await
            .expect("assign");
        let approver = clm.actor_for_user(approver.id).await.expect("actor");
        let done = clm
            .decide_approval(&approver, instance_id, true, None)
            .await
            .expect("approve");
        let certificate_id = done
            .instance
            .certificate_id
            .unwrap_or_else(|| panic!("not issued: {:?}", done.instance.error_message));
        let certificate = clm
            .get_certificate(&a.actor, certificate_id)
            .await
            .expect("certificate");
        assert_eq!(
            certificate.workflow_id,
            Some(done.instance.workflow_id),
            "the issued certificate does not name its workflow"
        );
        // A certificate issued without approval names no workflow.
        let direct = clm
            .issue_certificate(
                &system,
                IssueRequest {
                    issuer_id: ca.certificate.id,
                    policy_id: None,
                    subject: DistinguishedName::common_name("direct.example.com"),
                    sans: vec![SubjectAlternativeName::Dns("direct.example.com".into())],
                    kind: CertificateKind::TlsServer,
                    validity_days: 30,
                    key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                    owner_user_id: None,
                    organization_id: Some(a.org),
                },
            )
            .await
            .expect("direct issuance");
        let IssuanceOutcome::Issued { certificate } = direct else {
            panic!("expected a certificate: {direct:?}");
        };
        assert_eq!(certificate.workflow_id, None);
    })
    .await;
}

/// The inventory search takes `\`, `%` and `_` literally (the one LIKE
/// escaping function, shared with the user search).
#[tokio::test]
async fn inventory_tenancy_search_takes_like_metacharacters_literally() {
    on_both_keyed(security(), |clm| async move {
        let a = tenant(&clm, "a").await;
        let ca = root("Like Root");
        let tag = unique("like");
        let names = ["a\\b", "a%b", "a_b", "axb"].map(|n| format!("{tag}{n}"));
        let mut ids = Vec::new();
        for name in &names {
            // Such names are no DNS names: the certificates carry no SAN.
            let certificate = leaf_with_sans(&ca, name, Vec::new());
            let report = import_into(&clm, &a.actor, Some(a.org), &certificate.pem)
                .await
                .expect("import");
            ids.push(only_imported(&report).id);
        }
        let find = |needle: String| {
            found_ids(
                &clm,
                &a.actor,
                CertificateSearch {
                    common_name: Some(needle),
                    ..Default::default()
                },
            )
        };
        assert_eq!(find(format!("{tag}a\\b")).await, vec![ids[0]]);
        assert_eq!(find(format!("{tag}a%b")).await, vec![ids[1]]);
        assert_eq!(find(format!("{tag}a_b")).await, vec![ids[2]]);
        assert_eq!(find("\\".to_string()).await, vec![ids[0]]);
        assert_eq!(find(tag.clone()).await.len(), 4);
    })
    .await;
}

/// True when the CRL's DER holds the certificate's serial (as its INTEGER).
fn crl_lists(crl: &clm::service::revocation::GeneratedCrl, row: &clm::model::Certificate) -> bool {
    let serial = hex::decode(&row.serial_number).expect("hex serial");
    let mut integer = vec![0x02, serial.len() as u8];
    integer.extend(serial);
    crl.der
        .windows(integer.len())
        .any(|w| w == integer.as_slice())
}

/// The import from a host file decides access before it opens anything: the
/// tenant next door importing into A's organization, a member without
/// `certificates:import` and an importer's key narrowed to reading are refused,
/// and, for a missing path, refused without learning whether it exists.
/// Nothing is written; A itself imports the same file.
#[tokio::test]
async fn inventory_tenancy_file_import_is_authorized_before_the_file_is_opened() {
    on_both_keyed(security(), |clm| async move {
        let (a, b) = (tenant(&clm, "fa").await, tenant(&clm, "fb").await);
        let reader = member(&clm, "fr", &[("certificates", &["read"])]).await;
        // An importer who hands out a key narrowed to reading.
        let importer = member(
            &clm,
            "fk",
            &[
                ("certificates", &["import", "read"]),
                ("api_keys", &["create"]),
            ],
        )
        .await;
        let created = clm
            .create_api_key(
                &importer.actor,
                NewApiKey {
                    name: "read only".into(),
                    scopes: Some(clm::model::Permissions::from_pairs(&[(
                        "certificates",
                        &["read"],
                    )])),
                    ..Default::default()
                },
            )
            .await
            .expect("create key");
        let narrow = clm
            .authenticate_api_key(created.key.expose())
            .await
            .expect("key actor");
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = root("File Import Root");
        let present = dir.path().join("ca.pem");
        std::fs::write(&present, &ca.cert.pem).expect("write bundle");
        let missing = dir.path().join("missing.pem");
        let attempts = [
            ("the tenant next door", &b.actor, a.org),
            ("a member without import", &reader.actor, reader.org),
            ("an importer's read-only key", &narrow, importer.org),
        ];
        for (who, actor, org) in attempts {
            for path in [&present, &missing] {
                let options = ImportOptions {
                    organization_id: Some(org),
                    ..Default::default()
                };
                let err = clm
                    .import_certificates_from_file(actor, path, options)
                    .await
                    .expect_err(who);
                assert_eq!(err.code(), ErrorCode::PermissionDenied, "{who}: {err}");
                assert!(!err.to_string().contains(".pem"), "{who}: {err}");
            }
        }
        assert!(visible_ids(&clm, &a.actor).await.is_empty());
        let options = ImportOptions {
            organization_id: Some(a.org),
            ..Default::default()
        };
        let summary = clm
            .import_certificates_from_file(&a.actor, &present, options)
            .await
            .expect("A imports its file");
        assert_eq!(summary.imported, 1);
    })
    .await;
}

/// The SAN and owner searches (an index table on SQLite since migration
/// 0014, an index in expiry order since 0013/0015) keep the tenant filter:
/// A, searching by a name only B's certificate carries, by a name both
/// carry, or by B's member as owner, sees none of B's rows.
#[tokio::test]
async fn inventory_tenancy_san_and_owner_searches_see_only_own_rows() {
    on_both_keyed(security(), |clm| async move {
        let (a, b) = (tenant(&clm, "a").await, tenant(&clm, "b").await);
        let ca = root("Search Root");
        let both_name = SubjectAlternativeName::Dns(format!("{}.example.com", unique("both")));
        let b_name = format!("{}.example.com", unique("b-secret"));
        let a_cert = leaf_with_sans(&ca, "a.example.com", vec![both_name.clone()]);
        let b_cert = leaf_with_sans(
            &ca,
            "b.example.com",
            vec![
                both_name.clone(),
                SubjectAlternativeName::Dns(b_name.clone()),
            ],
        );
        let a_row = only_imported(
            &import_into(&clm, &a.actor, Some(a.org), &a_cert.pem)
                .await
                .expect("A imports"),
        );
        let b_row = only_imported(
            &import_into(&clm, &b.actor, Some(b.org), &b_cert.pem)
                .await
                .expect("B imports"),
        );
        let by_san = |name: &str| CertificateSearch {
            san: Some(name.to_string()),
            ..Default::default()
        };
        let both_value = both_name.value();
        assert!(found_ids(&clm, &a.actor, by_san(&b_name)).await.is_empty());
        assert_eq!(
            found_ids(&clm, &a.actor, by_san(&both_value)).await,
            vec![a_row.id]
        );
        assert_eq!(
            found_ids(&clm, &b.actor, by_san(&both_value)).await,
            vec![b_row.id]
        );
        assert_eq!(
            found_ids(&clm, &b.actor, by_san(&b_name)).await,
            vec![b_row.id]
        );
        // Naming B's organization does not widen A's view.
        assert!(
            found_ids(
                &clm,
                &a.actor,
                CertificateSearch {
                    organization_id: Some(b.org),
                    ..by_san(&both_value)
                }
            )
            .await
            .is_empty()
        );
        let by_owner = |owner| CertificateSearch {
            owner_user_id: Some(owner),
            ..Default::default()
        };
        assert!(found_ids(&clm, &a.actor, by_owner(b.user)).await.is_empty());
        assert!(
            found_ids(&clm, &b.actor, by_owner(a.user))
                .await
                .iter()
                .all(|id| *id != a_row.id)
        );
    })
    .await;
}
