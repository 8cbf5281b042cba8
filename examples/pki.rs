//! A small internal PKI: a root and an intermediate CA, a TLS server
//! certificate (DNS server.example.com + IP 127.0.0.1), a TLS client
//! certificate, one revoked certificate, and the intermediate's CRL.
//!
//!     cargo run --example pki -- OUT_DIR
//!
//! Data lives in SQLite under OUT_DIR unless CLM_SECURE_DATABASE_URL and
//! CLM_CORE_DATABASE_URL are set. With no master key configured
//! (CLM_MASTER_KEY / CLM_MASTER_KEY_FILE) it uses OUT_DIR/master.key,
//! creating it on first run. Writes into OUT_DIR: root.pem, intermediate.pem,
//! server.pem, server.key, client.pem, client.key, chain.pem, crl.pem.
//! Check them with:
//!
//!     openssl verify -CAfile OUT_DIR/root.pem -untrusted OUT_DIR/intermediate.pem OUT_DIR/server.pem
//!     openssl crl -in OUT_DIR/crl.pem -CAfile OUT_DIR/intermediate.pem -noout -text

use std::path::{Path, PathBuf};

use clm::crypto::{DistinguishedName, KeyAlgorithm};
use clm::model::{CertificateKind, PolicyRules, RevocationReason, SubjectAlternativeName};
use clm::service::authorities::NewCertificateAuthority;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::service::policies::NewPolicy;
use clm::{Clm, ClmConfig, MasterKeySource};

#[tokio::main]
async fn main() {
    let Some(out_dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cargo run --example pki -- OUT_DIR");
        std::process::exit(2);
    };
    if let Err(err) = run(&out_dir).await {
        eprintln!("pki failed: {err} [{}]", err.code());
        std::process::exit(1);
    }
}

fn write(dir: &Path, name: &str, contents: &str) -> clm::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, contents).map_err(|err| {
        clm::Error::Configuration(format!("cannot write {}: {err}", path.display()))
    })?;
    println!("wrote         {}", path.display());
    Ok(())
}

/// Private keys are written readable by the owner only.
fn write_key(dir: &Path, name: &str, pem: &clm::crypto::SecretString) -> clm::Result<()> {
    write(dir, name, pem.expose())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|err| {
            clm::Error::Configuration(format!("cannot restrict {}: {err}", path.display()))
        })?;
    }
    Ok(())
}

async fn run(out_dir: &Path) -> clm::Result<()> {
    std::fs::create_dir_all(out_dir).map_err(|err| {
        clm::Error::Configuration(format!("cannot create {}: {err}", out_dir.display()))
    })?;
    let mut config = match ClmConfig::from_env() {
        Ok(config) if std::env::var("CLM_SECURE_DATABASE_URL").is_ok() => config,
        Ok(config) => ClmConfig {
            master_key: config.master_key,
            ..ClmConfig::sqlite(out_dir.join("data"))
        },
        Err(_) => ClmConfig::sqlite(out_dir.join("data")),
    };
    if config.master_key.is_none() {
        let key_file = out_dir.join("master.key");
        let exists = key_file.exists();
        println!(
            "no master key configured: {} {}",
            if exists { "using" } else { "creating" },
            key_file.display()
        );
        config.master_key = Some(MasterKeySource::FileOrCreate(key_file));
    }
    println!("opening clm:  {:?}", config.database);
    let clm = Clm::open(config).await?;
    let result = build(&clm, out_dir).await;
    clm.close().await;
    result
}

async fn build(clm: &Clm, out_dir: &Path) -> clm::Result<()> {
    let system = clm.system_actor();
    // Runs are repeatable against the same database: names carry a suffix.
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let org = |cn: String| DistinguishedName {
        common_name: Some(cn),
        organization: Some("Example Inc.".into()),
        country: Some("US".into()),
        ..Default::default()
    };

    let root = clm
        .create_root_ca(
            &system,
            NewCertificateAuthority {
                subject: org(format!("Example Root CA {suffix}")),
                key_algorithm: KeyAlgorithm::EcdsaP384,
                validity_days: Some(3650),
                path_len: Some(1),
                ca_issuers_urls: vec!["http://pki.example.com/root.crt".into()],
                crl_distribution_points: vec!["http://pki.example.com/root.crl".into()],
                ..Default::default()
            },
        )
        .await?;
    println!(
        "root CA       {} ({})",
        root.certificate.subject_dn, root.certificate.id
    );

    let intermediate = clm
        .create_intermediate_ca(
            &system,
            root.certificate.id,
            NewCertificateAuthority {
                subject: org(format!("Example Issuing CA {suffix}")),
                key_algorithm: KeyAlgorithm::EcdsaP256,
                validity_days: Some(1825),
                path_len: Some(0),
                crl_distribution_points: vec!["http://pki.example.com/issuing.crl".into()],
                ca_issuers_urls: vec!["http://pki.example.com/issuing.crt".into()],
                ..Default::default()
            },
        )
        .await?;
    println!(
        "intermediate  {} ({})",
        intermediate.certificate.subject_dn, intermediate.certificate.id
    );

    let policy = clm
        .create_policy(
            &system,
            NewPolicy {
                policy_code: format!("INTERNAL-TLS-{suffix}"),
                name: "Internal TLS".into(),
                rules: PolicyRules {
                    max_validity_days: 397,
                    allowed_domains: vec!["example.com".into()],
                    allow_subdomains: true,
                    allowed_ip_ranges: vec!["127.0.0.0/8".into()],
                    allowed_algorithms: vec!["ECDSA".into(), "RSA".into()],
                    ..PolicyRules::default()
                },
                ..NewPolicy::default()
            },
        )
        .await?;
    println!("policy        {} v{}", policy.policy_code, policy.version);

    let request = |cn: &str, sans: Vec<SubjectAlternativeName>, kind| IssueRequest {
        issuer_id: intermediate.certificate.id,
        policy_id: Some(policy.id),
        subject: DistinguishedName::common_name(cn),
        sans,
        kind,
        validity_days: 90,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: None,
    };
    let server = clm
        .issue_certificate(
            &system,
            request(
                "server.example.com",
                vec![
                    SubjectAlternativeName::Dns("server.example.com".into()),
                    SubjectAlternativeName::Ip([127, 0, 0, 1].into()),
                ],
                CertificateKind::TlsServer,
            ),
        )
        .await?
        .into_certificate()?;
    println!(
        "server        {} serial {}",
        server.subject_dn, server.serial_number
    );

    let client = clm
        .issue_certificate(
            &system,
            request(
                "client.example.com",
                vec![SubjectAlternativeName::Dns("client.example.com".into())],
                CertificateKind::TlsClient,
            ),
        )
        .await?
        .into_certificate()?;
    println!(
        "client        {} serial {}",
        client.subject_dn, client.serial_number
    );

    let retired = clm
        .issue_certificate(
            &system,
            request(
                "retired.example.com",
                vec![SubjectAlternativeName::Dns("retired.example.com".into())],
                CertificateKind::TlsServer,
            ),
        )
        .await?
        .into_certificate()?;
    clm.revoke_certificate(
        &system,
        retired.id,
        RevocationReason::KeyCompromise,
        Some("pki example: a compromised key".into()),
    )
    .await?;
    println!(
        "revoked       {} serial {} (key_compromise)",
        retired.subject_dn, retired.serial_number
    );

    let crl = clm
        .generate_crl(&system, intermediate.certificate.id, None)
        .await?;
    println!(
        "CRL           #{} with {} entr(ies), {} bytes",
        crl.crl_number, crl.entry_count, crl.size_bytes
    );
    // Generation stores the CRL; serving reads the latest of its scope.
    let crl = clm
        .latest_crl(&system, intermediate.certificate.id, None, false)
        .await?;

    write(out_dir, "root.pem", &root.certificate.certificate_pem)?;
    write(
        out_dir,
        "intermediate.pem",
        &intermediate.certificate.certificate_pem,
    )?;
    write(out_dir, "server.pem", &server.certificate_pem)?;
    write_key(
        out_dir,
        "server.key",
        &clm.export_private_key(&system, server.id).await?,
    )?;
    write(out_dir, "client.pem", &client.certificate_pem)?;
    write_key(
        out_dir,
        "client.key",
        &clm.export_private_key(&system, client.id).await?,
    )?;
    write(
        out_dir,
        "chain.pem",
        &format!(
            "{}{}",
            server.certificate_pem, intermediate.certificate.certificate_pem
        ),
    )?;
    write(out_dir, "crl.pem", &crl.pem)?;
    Ok(())
}
