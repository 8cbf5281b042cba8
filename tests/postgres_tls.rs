//! PostgreSQL over TLS, against a second cluster this test starts itself
//! (`common::pg_cluster`: `initdb` into a temporary directory, a free port,
//! here with `ssl = on`) and stops however the test ends.
//!
//! The cluster's certificates come from clm itself, the way a user would
//! dogfood it: a clm on SQLite creates a root CA, issues the server's
//! certificate (`localhost`, 127.0.0.1) and a client certificate (CN = the
//! database user, clientAuth), and exports their keys into PEM files (0600).
//!
//! One `pg_hba.conf` serves every case, so the cluster is configured once:
//! TLS only (`hostssl`), trust for `postgres` on 127.0.0.1 and 127.0.0.2
//! (which the certificate does not name), and `cert` authentication for the
//! user `clm_cert`.
//!
//! Without `initdb` (or when the cluster cannot start) the test skips with
//! the reason; with `CI` set it fails instead.

mod common;

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use clm::crypto::{DistinguishedName, KeyAlgorithm};
use clm::db::{DatabaseTls, SslMode};
use clm::model::{CertificateKind, SubjectAlternativeName};
use clm::service::access::NewOrganization;
use clm::service::authorities::NewCertificateAuthority;
use clm::service::issuance::{IssueRequest, KeySource};
use clm::{Clm, ClmConfig, MasterKeySource};
use common::pg_cluster::{PgCluster, postgres_bin_dir, unavailable};

/// A password in every URL: no error may show it.
const PASSWORD: &str = "pw-never-shown-7f3a";
/// The user that must present a client certificate.
const CERT_USER: &str = "clm_cert";

/// Writes `contents` to a new file with `mode` from its creation on.
fn write_file(path: &Path, contents: &str, mode: u32) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|err| panic!("create {}: {err}", path.display()));
    file.write_all(contents.as_bytes())
        .unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
}

/// PEM files made by clm: two roots (the second one never signs anything
/// the cluster shows), the server's certificate and key, a client's.
struct Pki {
    root: PathBuf,
    other_root: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server_cert: String,
    server_key: String,
    root_pem: String,
}

async fn issue_pki(dir: &Path) -> Pki {
    let clm = Clm::open(
        ClmConfig::sqlite(dir.join("pki-data"))
            .with_master_key(MasterKeySource::FileOrCreate(dir.join("pki-master.key"))),
    )
    .await
    .expect("open the PKI's clm on SQLite");
    let system = clm.system_actor();
    let root_ca = |cn: &str| NewCertificateAuthority {
        subject: DistinguishedName::common_name(cn),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        validity_days: Some(30),
        path_len: Some(0),
        ..Default::default()
    };
    let root = clm
        .create_root_ca(&system, root_ca("clm test database CA"))
        .await
        .expect("create the root CA");
    let other = clm
        .create_root_ca(&system, root_ca("clm test other CA"))
        .await
        .expect("create the second root CA");
    let issue = |cn: &str, sans: Vec<SubjectAlternativeName>, kind| IssueRequest {
        issuer_id: root.certificate.id,
        policy_id: None,
        subject: DistinguishedName::common_name(cn),
        sans,
        kind,
        validity_days: 7,
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        owner_user_id: None,
        organization_id: None,
    };
    let server = clm
        .issue_certificate(
            &system,
            issue(
                "localhost",
                vec![
                    SubjectAlternativeName::Dns("localhost".into()),
                    SubjectAlternativeName::Ip([127, 0, 0, 1].into()),
                ],
                CertificateKind::TlsServer,
            ),
        )
        .await
        .expect("issue the server certificate")
        .into_certificate()
        .expect("an issued server certificate");
    let client = clm
        .issue_certificate(
            &system,
            issue(CERT_USER, Vec::new(), CertificateKind::TlsClient),
        )
        .await
        .expect("issue the client certificate")
        .into_certificate()
        .expect("an issued client certificate");
    let server_key = clm
        .export_private_key(&system, server.id)
        .await
        .expect("export the server key");
    let client_key = clm
        .export_private_key(&system, client.id)
        .await
        .expect("export the client key");
    clm.close().await;

    let pki = Pki {
        root: dir.join("root.pem"),
        other_root: dir.join("other-root.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
        server_cert: server.certificate_pem.clone(),
        server_key: server_key.expose().to_string(),
        root_pem: root.certificate.certificate_pem.clone(),
    };
    write_file(&pki.root, &root.certificate.certificate_pem, 0o644);
    write_file(&pki.other_root, &other.certificate.certificate_pem, 0o644);
    write_file(&pki.client_cert, &client.certificate_pem, 0o644);
    write_file(&pki.client_key, client_key.expose(), 0o600);
    pki
}

/// The cluster with the certificates and the TLS-only configuration, started.
fn start_cluster(bin: PathBuf, pki: &Pki) -> Result<PgCluster, String> {
    let settings = "listen_addresses = '127.0.0.1,127.0.0.2'\n\
                    ssl = on\n\
                    ssl_cert_file = 'server.crt'\n\
                    ssl_key_file = 'server.key'\n\
                    ssl_ca_file = 'root.crt'\n";
    let hba = format!(
        "# TLS only: no `host` line, so sslmode=disable finds no entry.\n\
         hostssl all {CERT_USER} 127.0.0.1/32 cert\n\
         hostssl all all 127.0.0.1/32 trust\n\
         hostssl all all 127.0.0.2/32 trust\n"
    );
    let cluster = PgCluster::init(bin, settings, &hba)?;
    let data = cluster.data_dir();
    write_file(&data.join("server.crt"), &pki.server_cert, 0o644);
    write_file(&data.join("server.key"), &pki.server_key, 0o600);
    write_file(&data.join("root.crt"), &pki.root_pem, 0o644);
    cluster.give(data)?;
    cluster.start()?;
    Ok(cluster)
}

fn url(cluster: &PgCluster, host: &str, user: &str, db: &str) -> String {
    format!(
        "postgres://{user}:{PASSWORD}@{host}:{}/{db}",
        cluster.port()
    )
}

fn config(cluster: &PgCluster, host: &str, user: &str, stem: &str, dir: &Path) -> ClmConfig {
    ClmConfig::postgres(
        url(cluster, host, user, &format!("{stem}_secure")),
        url(cluster, host, user, &format!("{stem}_core")),
    )
    .with_master_key(MasterKeySource::FileOrCreate(dir.join("master.key")))
    .with_max_connections(2)
}

/// Whether TCP_NODELAY is set, for each TCP connection of this process to
/// `port` on this host. Linux: `/proc/self/net/tcp*` gives each socket's
/// inode by remote port, `/proc/self/fd` the descriptor holding it.
fn no_delay_of_connections_to(port: u16) -> Vec<bool> {
    let mut sockets = std::collections::HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(remote), Some(state), Some(inode)) =
                (fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            // rem_address is ADDRESS:PORT in hex; state 01 is ESTABLISHED.
            let remote_port = remote
                .rsplit(':')
                .next()
                .and_then(|hex| u16::from_str_radix(hex, 16).ok());
            if remote_port == Some(port) && *state == "01" {
                sockets.insert(format!("socket:[{inode}]"));
            }
        }
    }
    let mut no_delay = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("list /proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !sockets.contains(target.to_string_lossy().as_ref()) {
            continue;
        }
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let mut value: libc::c_int = 0;
        let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
            .expect("c_int's size fits socklen_t");
        // SAFETY: `fd` is an open socket of this process (the pool holds its
        // connections open), and `value`/`len` describe a live c_int.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                std::ptr::from_mut(&mut value).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "getsockopt(TCP_NODELAY) on fd {fd}");
        no_delay.push(value != 0);
    }
    no_delay
}

/// Opens clm (migrations run) and does one audited write; every connection
/// it holds to the cluster has Nagle's algorithm off (with it on, each small
/// TLS write waits for the server's delayed acknowledgement: sqlx 0.9.0).
async fn open_and_work(config: ClmConfig, port: u16, what: &str) {
    let clm = Clm::open(config)
        .await
        .unwrap_or_else(|err| panic!("{what}: open failed: {err}"));
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let org = clm
        .create_organization(
            &clm.system_actor(),
            NewOrganization {
                org_code: format!("TLS-{suffix}"),
                name: format!("over TLS ({what})"),
                description: None,
                parent_organization_id: None,
            },
        )
        .await
        .unwrap_or_else(|err| panic!("{what}: create_organization failed: {err}"));
    assert_eq!(org.org_code, format!("TLS-{suffix}"));
    let no_delay = no_delay_of_connections_to(port);
    assert!(
        !no_delay.is_empty(),
        "{what}: no connection to port {port} found"
    );
    assert!(
        no_delay.iter().all(|&on| on),
        "{what}: TCP_NODELAY is off on some of the {} connections",
        no_delay.len()
    );
    clm.close().await;
}

/// Opening fails; returns the error's text after checking it hides the password.
async fn open_fails(config: ClmConfig, what: &str) -> String {
    match Clm::open(config).await {
        Ok(clm) => {
            clm.close().await;
            panic!("{what}: opened, but should have been refused");
        }
        Err(err) => {
            let text = format!("{err} / {err:?}");
            assert!(
                !text.contains(PASSWORD),
                "{what}: the error shows the password: {text}"
            );
            eprintln!("{what}: refused as expected: {err}");
            err.to_string()
        }
    }
}

#[tokio::test]
async fn postgres_over_tls_with_a_clm_issued_pki() {
    let Some(bin) = postgres_bin_dir() else {
        return unavailable(
            "postgres_tls",
            "initdb not found (set CLM_TEST_PG_BIN to PostgreSQL's bin directory)",
        );
    };
    let work = tempfile::tempdir().expect("tempdir");
    let pki = issue_pki(work.path()).await;
    let cluster = match start_cluster(bin, &pki) {
        Ok(cluster) => cluster,
        Err(reason) => return unavailable("postgres_tls", &reason),
    };
    cluster
        .admin(
            "?sslmode=require",
            &[
                format!("CREATE ROLE {CERT_USER} LOGIN"),
                "CREATE DATABASE tls_secure".into(),
                "CREATE DATABASE tls_core".into(),
                format!("CREATE DATABASE cert_secure OWNER {CERT_USER}"),
                format!("CREATE DATABASE cert_core OWNER {CERT_USER}"),
            ],
        )
        .await;
    let dir = work.path();
    let tls = |mode: SslMode, root: Option<&Path>| DatabaseTls {
        sslmode: Some(mode),
        sslrootcert: root.map(Path::to_path_buf),
        ..DatabaseTls::default()
    };

    // verify-full to the name in the certificate: opens, migrates, works.
    // The URLs say sslmode=disable: the configuration overrides them.
    let overridden = ClmConfig::postgres(
        format!(
            "{}?sslmode=disable",
            url(&cluster, "localhost", "postgres", "tls_secure")
        ),
        format!(
            "{}?sslmode=disable",
            url(&cluster, "localhost", "postgres", "tls_core")
        ),
    )
    .with_master_key(MasterKeySource::FileOrCreate(dir.join("master.key")))
    .with_max_connections(2)
    .with_database_tls(tls(SslMode::VerifyFull, Some(&pki.root)));
    open_and_work(overridden, cluster.port(), "verify-full to localhost").await;

    // The same from the URL alone (libpq's parameters).
    let root = pki.root.display();
    let from_url = ClmConfig::postgres(
        format!(
            "{}?sslmode=verify-full&sslrootcert={root}",
            url(&cluster, "127.0.0.1", "postgres", "tls_secure")
        ),
        format!(
            "{}?sslmode=verify-full&sslrootcert={root}",
            url(&cluster, "127.0.0.1", "postgres", "tls_core")
        ),
    )
    .with_master_key(MasterKeySource::FileOrCreate(dir.join("master.key")))
    .with_max_connections(2);
    open_and_work(
        from_url,
        cluster.port(),
        "verify-full to 127.0.0.1 from the URL",
    )
    .await;

    // A root that did not sign the server's certificate.
    let wrong_ca = config(&cluster, "localhost", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::VerifyFull, Some(&pki.other_root)));
    let err = open_fails(wrong_ca, "verify-full with another CA").await;
    assert!(err.contains("certificate verify failed"), "{err}");
    assert!(err.contains("not signed by a trusted CA"), "{err}");

    // 127.0.0.2 reaches the same server, but the certificate does not name it.
    let mismatch = config(&cluster, "127.0.0.2", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::VerifyFull, Some(&pki.root)));
    let err = open_fails(mismatch, "verify-full to 127.0.0.2").await;
    assert!(err.contains("host name mismatch"), "{err}");
    assert!(err.contains("127.0.0.2"), "{err}");
    let any_name = config(&cluster, "127.0.0.2", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::VerifyCa, Some(&pki.root)));
    open_and_work(any_name, cluster.port(), "verify-ca to 127.0.0.2").await;

    // require: encrypted, nothing checked.
    let require = config(&cluster, "127.0.0.2", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::Require, None));
    open_and_work(require, cluster.port(), "require without a root").await;

    // require with a root checks the chain, as libpq does.
    let require_checked = config(&cluster, "localhost", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::Require, Some(&pki.other_root)));
    let err = open_fails(require_checked, "require with another CA").await;
    assert!(err.contains("certificate verify failed"), "{err}");

    // The server accepts TLS only.
    let plain = config(&cluster, "localhost", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::Disable, None));
    let err = open_fails(plain, "sslmode=disable against hostssl only").await;
    assert!(err.contains("no pg_hba.conf entry"), "{err}");
    assert!(err.contains("no encryption"), "{err}");

    // `cert` authentication: no client certificate, no entry.
    let anonymous = config(&cluster, "localhost", CERT_USER, "cert", dir)
        .with_database_tls(tls(SslMode::VerifyFull, Some(&pki.root)));
    let err = open_fails(anonymous, "cert auth without a client certificate").await;
    assert!(err.contains("client certificate"), "{err}");

    // A client certificate without its key is a configuration error.
    let half =
        config(&cluster, "localhost", CERT_USER, "cert", dir).with_database_tls(DatabaseTls {
            sslcert: Some(pki.client_cert.clone()),
            ..tls(SslMode::VerifyFull, Some(&pki.root))
        });
    let err = open_fails(half, "sslcert without sslkey").await;
    assert!(err.contains("sslkey"), "{err}");

    // The clm-issued client certificate (CN = the user) gets in.
    let mtls =
        config(&cluster, "localhost", CERT_USER, "cert", dir).with_database_tls(DatabaseTls {
            sslcert: Some(pki.client_cert.clone()),
            sslkey: Some(pki.client_key.clone()),
            ..tls(SslMode::VerifyFull, Some(&pki.root))
        });
    open_and_work(
        mtls,
        cluster.port(),
        "mutual TLS with a clm-issued client certificate",
    )
    .await;

    // A root file that is not there is named.
    let missing = config(&cluster, "localhost", "postgres", "tls", dir)
        .with_database_tls(tls(SslMode::VerifyFull, Some(&dir.join("absent.pem"))));
    let err = open_fails(missing, "missing sslrootcert").await;
    assert!(
        err.contains("sslrootcert") && err.contains("absent.pem"),
        "{err}"
    );

    drop(cluster);
}
