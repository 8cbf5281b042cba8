//! Inventory benchmark: loads `CLM_BENCH_CERTS` (default 100000) synthetic
//! issued certificates, each with its sealed private key row (secure
//! database) and its metadata row (core database), then times the inventory
//! queries and reports the bytes each certificate takes on disk.
//!
//! `cargo bench -p clm-core --features unstable-internals --bench inventory`
//! (PostgreSQL from `CLM_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432`; a fresh database pair is created and
//! dropped). `CLM_BENCH_BACKENDS=sqlite` (or `postgres`) runs one backend.
//!
//! SQLite loads through the store's `insert_many`, as the application
//! writes; PostgreSQL loads with `COPY` (text format) with the secondary
//! indexes dropped, then builds them, as a bulk restore does, so 10 million
//! certificates take minutes. The load stops early, and says so, when the
//! disk holding the data would fall under `CLM_BENCH_MIN_FREE_GB` (default
//! 27) free: the figures are then for what was loaded.
//!
//! The rows are sized like real ones: a P-256 leaf's PEM (720 bytes of DER),
//! two DNS names, key identifiers, an issuer (one CA row), an owner and an
//! organization, and a sealed PKCS#8 P-256 key (5-byte header + 138 + 16-byte
//! tag; the bytes are shared synthetic ones, the size is right).

#[path = "../tests/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{DateTime, Duration as Days, SecondsFormat, Utc};
use clm::ClmConfig;
use clm::db::{Databases, Pool};
use clm::model::*;
use clm::store::certificates::{self, CertificateFilter};
use clm::store::views::{self, CertificateSummaryFilter};
use clm::store::{
    PageRequest, certificate_metadata, encryption_keys, now, organizations, private_keys, users,
};
use sqlx::AssertSqlSafe;
use sqlx::types::Json;

/// Rows per `insert_many` call (SQLite).
const BATCH: usize = 5_000;
/// Rows per `COPY` (PostgreSQL); the free disk is checked between them.
const COPY_CHUNK: usize = 100_000;
const OWNERS: usize = 1_000;
const ORGANIZATIONS: usize = 10;
/// Most samples per measure; a measure stops sampling after `SAMPLE_BUDGET`
/// (a slow query, such as SQLite's SAN search before migration 0014, which
/// read every row).
const SAMPLES: usize = 41;
const SAMPLE_BUDGET: Duration = Duration::from_secs(10);
const CERTIFICATE_DER_LEN: usize = 720;
/// 5-byte envelope header + PKCS#8 P-256 (138) + AES-GCM tag (16).
const SEALED_P256_LEN: usize = 159;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// splitmix64: a bijection, so `mix(i)` differs for every row (unique
/// fingerprints and serials without a set to check them against).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Ids in UUIDv7 layout counting up from a fresh one, as `ResourceId::new`
/// hands them out over time (so the primary keys fill like the real ones).
fn sequential_id(base: u128, i: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(base + i as u128)
}

fn id_base() -> u128 {
    uuid::Uuid::now_v7().as_u128() & !((1u128 << 40) - 1)
}

/// Everything the rows of one load share.
#[derive(Clone)]
struct Fixture {
    t: DateTime<Utc>,
    ca: CertificateId,
    data_key: EncryptionKeyId,
    owners: Vec<UserId>,
    organizations: Vec<OrganizationId>,
    cert_base: u128,
    key_base: u128,
    meta_base: u128,
    sealed: Vec<u8>,
    nonce: Vec<u8>,
}

/// Certificate `i` of the load; its key and metadata rows follow from `i`.
fn certificate(fx: &Fixture, i: usize) -> Certificate {
    let h = mix(i as u64);
    let h2 = mix(h ^ 0x5EED);
    // not_after uniform over [-365, +730) days: ~2.7% expire within 30 days.
    let minutes = (h2 % (1095 * 1440)) as i64 - 365 * 1440;
    let not_after = fx.t + Days::minutes(minutes);
    let host = format!("host{i}.example.com");
    let mut der = Vec::with_capacity(CERTIFICATE_DER_LEN);
    let mut x = h;
    while der.len() < CERTIFICATE_DER_LEN {
        x = mix(x);
        der.extend_from_slice(&x.to_le_bytes());
    }
    der.truncate(CERTIFICATE_DER_LEN);
    let body = base64::engine::general_purpose::STANDARD.encode(&der);
    let mut pem = String::with_capacity(body.len() + body.len() / 64 + 60);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    let serial = format!("{h:016x}{h2:016x}");
    Certificate {
        id: CertificateId::from(sequential_id(fx.cert_base, i)),
        certificate_id: format!("cert-{i:012x}"),
        common_name: Some(host.clone()),
        subject_dn: format!("CN={host},O=Example Corp,C=US"),
        issuer_dn: "CN=Example Issuing CA 1,O=Example Corp,C=US".into(),
        serial_number_signed: serial.clone().into(),
        serial_number: serial,
        not_before: not_after - Days::days(365),
        not_after,
        status: if minutes <= 0 {
            CertificateStatus::Expired
        } else if h.is_multiple_of(100) {
            CertificateStatus::Revoked
        } else {
            CertificateStatus::Active
        },
        fingerprint_sha256: format!(
            "{h:016x}{:016x}{:016x}{:016x}",
            mix(h2),
            mix(h ^ 1),
            mix(h ^ 2)
        ),
        key_algorithm: "ECDSA".into(),
        key_size: 256,
        signature_algorithm: "ecdsa-with-SHA256".into(),
        is_ca: false,
        path_len: None,
        certificate_kind: CertificateKind::TlsServer,
        source: CertificateSource::Issued,
        issuer_certificate_id: Some(fx.ca),
        replaces_certificate_id: None,
        subject_key_id: Some(format!(
            "{:016x}{:016x}{:08x}",
            mix(h ^ 3),
            mix(h ^ 4),
            h as u32
        )),
        authority_key_id: Some("6a1e0c5d4b3a29180716f5e4d3c2b1a0f9e8d7c6".into()),
        subject_alternative_names: Json(vec![
            SubjectAlternativeName::Dns(host.clone()),
            SubjectAlternativeName::Dns(format!("www.{host}")),
        ]),
        import_flags: Json(Vec::new()),
        certificate_pem: pem,
        owner_user_id: Some(fx.owners[(h2 as usize / 7) % fx.owners.len()]),
        organization_id: Some(fx.organizations[i % fx.organizations.len()]),
        policy_id: None,
        policy_version: None,
        workflow_id: None,
        crl_number: 0,
        created_at: fx.t,
        updated_at: fx.t,
        deleted_at: None,
    }
}

fn private_key(fx: &Fixture, i: usize, cert: &Certificate) -> PrivateKeyRecord {
    let mut key = common::private_key(cert.id, fx.data_key);
    key.id = PrivateKeyId::from(sequential_id(fx.key_base, i));
    key.encrypted_key_material = Opaque(fx.sealed.clone());
    key.nonce = Opaque(fx.nonce.clone());
    key.public_key_sha256 = format!("{:016x}", mix(i as u64 ^ 0xC0FFEE)).repeat(4);
    key.created_at = fx.t;
    key.updated_at = fx.t;
    key
}

fn metadata(fx: &Fixture, i: usize, cert: &Certificate) -> CertificateMetadata {
    let mut meta = common::metadata(cert.id);
    meta.id = CertificateMetadataId::from(sequential_id(fx.meta_base, i));
    meta.owner_user_id = cert.owner_user_id;
    meta.organization_id = cert.organization_id;
    meta.not_after = Some(cert.not_after);
    meta.common_name = cert.common_name.clone();
    meta.created_at = fx.t;
    meta.updated_at = fx.t;
    meta
}

async fn fixture(clm: &Databases) -> Fixture {
    let mut core = clm.core.acquire().await.expect("core");
    let owners: Vec<User> = (0..OWNERS)
        .map(|i| common::user(&format!("owner{i}")))
        .collect();
    for owner in &owners {
        users::insert(&mut core.conn(), owner).await.expect("owner");
    }
    let orgs: Vec<Organization> = (0..ORGANIZATIONS)
        .map(|i| common::organization(&format!("org{i}")))
        .collect();
    for org in &orgs {
        organizations::insert(&mut core.conn(), org)
            .await
            .expect("organization");
    }
    drop(core);
    let t = now();
    let mut secure = clm.secure.acquire().await.expect("secure");
    let mut ca = common::certificate("Example Issuing CA 1", t + Days::days(3650));
    ca.is_ca = true;
    ca.certificate_kind = CertificateKind::IntermediateCa;
    certificates::insert(&mut secure.conn(), &ca)
        .await
        .expect("CA");
    let data_key = common::encryption_key(1, KeyStatus::Active);
    encryption_keys::insert(&mut secure.conn(), &data_key)
        .await
        .expect("data key");
    Fixture {
        t,
        ca: ca.id,
        data_key: data_key.id,
        owners: owners.iter().map(|u| u.id).collect(),
        organizations: orgs.iter().map(|o| o.id).collect(),
        cert_base: id_base(),
        key_base: id_base() + (1u128 << 41),
        meta_base: id_base() + (1u128 << 42),
        sealed: (0..SEALED_P256_LEN).map(|b| (b * 37 % 251) as u8).collect(),
        nonce: vec![0x5a; 12],
    }
}

/// Free bytes on the filesystem holding `path` (None when `df` cannot say).
fn free_bytes(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

fn min_free() -> u64 {
    let gb: u64 = std::env::var("CLM_BENCH_MIN_FREE_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(27);
    gb << 30
}

/// Wall-clock budget of the PostgreSQL load (`CLM_BENCH_LOAD_SECONDS`,
/// default unlimited): on a shared machine, measure what loads in time.
fn load_budget() -> Duration {
    std::env::var("CLM_BENCH_LOAD_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::MAX, Duration::from_secs)
}

/// Stops the load before the disk under `path` falls below the floor.
fn disk_allows(path: &Path, loaded: usize) -> bool {
    match free_bytes(path) {
        Some(free) if free < min_free() => {
            println!(
                "  load stopped at {loaded} certificates: {:.1} GiB free under {}",
                free as f64 / (1u64 << 30) as f64,
                path.display()
            );
            false
        }
        _ => true,
    }
}

async fn load_sqlite(clm: &Databases, fx: &Fixture, n: usize, dir: &Path) -> usize {
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        if done % (20 * BATCH) == 0 && !disk_allows(dir, done) {
            break;
        }
        let size = BATCH.min(n - done);
        let certs: Vec<Certificate> = (done..done + size).map(|i| certificate(fx, i)).collect();
        let keys: Vec<PrivateKeyRecord> = certs
            .iter()
            .enumerate()
            .map(|(k, c)| private_key(fx, done + k, c))
            .collect();
        let metas: Vec<CertificateMetadata> = certs
            .iter()
            .enumerate()
            .map(|(k, c)| metadata(fx, done + k, c))
            .collect();
        let mut tx = clm.secure.begin().await.expect("begin");
        certificates::insert_many(&mut tx.conn(), &certs)
            .await
            .expect("insert certificates");
        private_keys::insert_many(&mut tx.conn(), &keys)
            .await
            .expect("insert keys");
        tx.commit().await.expect("commit");
        let mut tx = clm.core.begin().await.expect("begin");
        certificate_metadata::insert_many(&mut tx.conn(), &metas)
            .await
            .expect("insert metadata");
        tx.commit().await.expect("commit");
        done += size;
    }
    report_load(done, started.elapsed());
    done
}

fn report_load(n: usize, elapsed: Duration) {
    println!(
        "  load: {n} certificates + {n} sealed keys + {n} metadata rows in {:.1} s ({:.0} certificates/s)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A value for COPY's text format: backslash, tab and newlines escaped.
fn copy_text(out: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(ch),
        }
    }
}

fn copy_opt(out: &mut String, value: Option<impl std::fmt::Display>) {
    match value {
        Some(v) => copy_text(out, &v.to_string()),
        None => out.push_str("\\N"),
    }
}

fn copy_bytea(out: &mut String, bytes: &[u8]) {
    out.push_str("\\\\x");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

const CERT_COPY: &str = "COPY certificates (id, certificate_id, common_name, subject_dn, issuer_dn, \
    serial_number, not_before, not_after, status, fingerprint_sha256, key_algorithm, key_size, \
    signature_algorithm, is_ca, certificate_kind, source, issuer_certificate_id, subject_key_id, \
    authority_key_id, subject_alternative_names, certificate_pem, owner_user_id, organization_id, \
    created_at, updated_at) FROM STDIN";
const KEY_COPY: &str = "COPY private_keys (id, certificate_id, encryption_key_id, \
    encrypted_key_material, nonce, key_algorithm, key_size, public_key_sha256, created_at, \
    updated_at) FROM STDIN";
const META_COPY: &str = "COPY certificate_metadata (id, certificate_id, common_name, not_after, \
    owner_user_id, organization_id, environment, application, tags, created_at, updated_at) \
    FROM STDIN";

fn cert_line(out: &mut String, c: &Certificate) {
    let sans = serde_json::to_string(&c.subject_alternative_names.0).expect("SANs");
    let fields: [Option<String>; 25] = [
        Some(c.id.to_string()),
        Some(c.certificate_id.clone()),
        c.common_name.clone(),
        Some(c.subject_dn.clone()),
        Some(c.issuer_dn.clone()),
        Some(c.serial_number.clone()),
        Some(rfc3339(c.not_before)),
        Some(rfc3339(c.not_after)),
        Some(c.status.as_str().to_string()),
        Some(c.fingerprint_sha256.clone()),
        Some(c.key_algorithm.clone()),
        Some(c.key_size.to_string()),
        Some(c.signature_algorithm.clone()),
        Some(if c.is_ca { "t" } else { "f" }.to_string()),
        Some(c.certificate_kind.as_str().to_string()),
        Some(c.source.as_str().to_string()),
        c.issuer_certificate_id.map(|id| id.to_string()),
        c.subject_key_id.clone(),
        c.authority_key_id.clone(),
        Some(sans),
        Some(c.certificate_pem.clone()),
        c.owner_user_id.map(|id| id.to_string()),
        c.organization_id.map(|id| id.to_string()),
        Some(rfc3339(c.created_at)),
        Some(rfc3339(c.updated_at)),
    ];
    for (k, field) in fields.iter().enumerate() {
        if k > 0 {
            out.push('\t');
        }
        copy_opt(out, field.as_deref());
    }
    out.push('\n');
}

fn key_line(out: &mut String, k: &PrivateKeyRecord) {
    let _ = write!(
        out,
        "{}\t{}\t{}\t",
        k.id, k.certificate_id, k.encryption_key_id
    );
    copy_bytea(out, &k.encrypted_key_material.0);
    out.push('\t');
    copy_bytea(out, &k.nonce.0);
    let _ = writeln!(
        out,
        "\t{}\t{}\t{}\t{}\t{}",
        k.key_algorithm,
        k.key_size,
        k.public_key_sha256,
        rfc3339(k.created_at),
        rfc3339(k.updated_at)
    );
}

fn meta_line(out: &mut String, m: &CertificateMetadata) {
    let tags = serde_json::to_string(&m.tags.0).expect("tags");
    let fields: [Option<String>; 11] = [
        Some(m.id.to_string()),
        Some(m.certificate_id.to_string()),
        m.common_name.clone(),
        m.not_after.map(rfc3339),
        m.owner_user_id.map(|id| id.to_string()),
        m.organization_id.map(|id| id.to_string()),
        m.environment.clone(),
        m.application.clone(),
        Some(tags),
        Some(rfc3339(m.created_at)),
        Some(rfc3339(m.updated_at)),
    ];
    for (k, field) in fields.iter().enumerate() {
        if k > 0 {
            out.push('\t');
        }
        copy_opt(out, field.as_deref());
    }
    out.push('\n');
}

/// Which table one COPY task fills.
#[derive(Clone, Copy)]
enum CopyTable {
    Certificates,
    PrivateKeys,
    Metadata,
}

/// Rows `from..to` of one table through one COPY, sent in ~1 MiB pieces.
async fn copy_chunk(
    pool: sqlx::PgPool,
    fx: std::sync::Arc<Fixture>,
    table: CopyTable,
    from: usize,
    to: usize,
) -> u64 {
    let mut conn = pool.acquire().await.expect("connection");
    let statement = match table {
        CopyTable::Certificates => CERT_COPY,
        CopyTable::PrivateKeys => KEY_COPY,
        CopyTable::Metadata => META_COPY,
    };
    let mut copy = conn.copy_in_raw(statement).await.expect("COPY");
    let mut buf = String::with_capacity(1 << 21);
    for i in from..to {
        let cert = certificate(&fx, i);
        match table {
            CopyTable::Certificates => cert_line(&mut buf, &cert),
            CopyTable::PrivateKeys => key_line(&mut buf, &private_key(&fx, i, &cert)),
            CopyTable::Metadata => meta_line(&mut buf, &metadata(&fx, i, &cert)),
        }
        if buf.len() >= 1 << 20 {
            copy.send(std::mem::take(&mut buf).into_bytes())
                .await
                .expect("COPY data");
            buf.reserve(1 << 21);
        }
    }
    if !buf.is_empty() {
        copy.send(buf.into_bytes()).await.expect("COPY data");
    }
    copy.finish().await.expect("COPY finish")
}

/// The secondary indexes of the loaded tables (every index not backing a
/// primary key or unique constraint), by name and definition: the load drops them and builds
/// them again after the rows are in, as a bulk restore does; maintaining
/// 20 indexes row by row made the load take most of an hour at 10 million.
async fn secondary_indexes(pool: &sqlx::PgPool) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i
         WHERE i.schemaname = 'public'
           AND i.tablename IN ('certificates', 'private_keys', 'certificate_metadata')
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                           WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))
         ORDER BY i.indexname",
    )
    .fetch_all(pool)
    .await
    .expect("list indexes")
}

async fn drop_indexes(pool: &sqlx::PgPool, indexes: &[(String, String)]) {
    for (name, _) in indexes {
        sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(pool)
            .await
            .expect("drop index");
    }
}

/// Builds `indexes` again, two at a time (one per core), and prints how
/// long it took.
async fn build_indexes(pool: &sqlx::PgPool, indexes: Vec<(String, String)>) {
    let started = Instant::now();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(indexes));
    let builders = (0..2).map(|_| {
        let queue = queue.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("conn");
            sqlx::query("SET maintenance_work_mem = '1GB'")
                .execute(&mut *conn)
                .await
                .expect("maintenance_work_mem");
            loop {
                let next = queue.lock().expect("queue").pop();
                let Some((_, definition)) = next else { break };
                sqlx::query(AssertSqlSafe(definition))
                    .execute(&mut *conn)
                    .await
                    .expect("build index");
            }
        })
    });
    for builder in builders.collect::<Vec<_>>() {
        builder.await.expect("index builder");
    }
    println!(
        "  secondary indexes built after the load in {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

async fn load_postgres(clm: &Databases, fx: Fixture, n: usize) -> usize {
    let (Pool::Postgres(secure), Pool::Postgres(core)) = (&clm.secure, &clm.core) else {
        panic!("load_postgres on another backend");
    };
    let secure_indexes = secondary_indexes(secure).await;
    let core_indexes = secondary_indexes(core).await;
    drop_indexes(secure, &secure_indexes).await;
    drop_indexes(core, &core_indexes).await;
    let done = copy_rows(secure, core, fx, n).await;
    build_indexes(secure, secure_indexes).await;
    build_indexes(core, core_indexes).await;
    done
}

async fn copy_rows(secure: &sqlx::PgPool, core: &sqlx::PgPool, fx: Fixture, n: usize) -> usize {
    let data_dir = Path::new("/var/lib/postgresql");
    let fx = std::sync::Arc::new(fx);
    let started = Instant::now();
    let mut done = 0;
    let budget = load_budget();
    let mut keys_pending: Option<(usize, usize)> = None;
    while done < n {
        if !disk_allows(data_dir, done) {
            break;
        }
        if started.elapsed() > budget {
            println!(
                "  load stopped at {done} certificates: CLM_BENCH_LOAD_SECONDS ({} s) spent",
                budget.as_secs()
            );
            break;
        }
        let to = (done + COPY_CHUNK).min(n);
        // A key row names its certificate (foreign key): the keys of a chunk
        // go in beside the next chunk's certificates, once their own are in.
        let tasks = [
            Some((secure.clone(), CopyTable::Certificates, done, to)),
            Some((core.clone(), CopyTable::Metadata, done, to)),
            keys_pending.map(|(from, until)| (secure.clone(), CopyTable::PrivateKeys, from, until)),
        ]
        .map(|task| {
            task.map(|(pool, table, from, until)| {
                (
                    until - from,
                    tokio::spawn(copy_chunk(pool, fx.clone(), table, from, until)),
                )
            })
        });
        for (expected, task) in tasks.into_iter().flatten() {
            let rows = task.await.expect("COPY task");
            assert_eq!(rows, expected as u64, "rows copied");
        }
        keys_pending = Some((done, to));
        done = to;
        if done % 1_000_000 == 0 {
            println!(
                "    {done} loaded, {:.0} s, {:.0}/s",
                started.elapsed().as_secs_f64(),
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some((from, until)) = keys_pending {
        let rows = copy_chunk(
            secure.clone(),
            fx.clone(),
            CopyTable::PrivateKeys,
            from,
            until,
        )
        .await;
        assert_eq!(rows, (until - from) as u64, "rows copied");
    }
    report_load(done, started.elapsed());
    done
}

async fn analyze(clm: &Databases) {
    for pool in [&clm.secure, &clm.core] {
        let mut conn = pool.acquire().await.expect("conn");
        common::raw(&mut conn.conn(), "ANALYZE", Vec::new())
            .await
            .expect("ANALYZE");
    }
}

/// Median of up to `SAMPLES` runs of `run(k)`, fewer when they exceed the budget.
async fn sample(label: &str, mut run: impl AsyncFnMut(usize) -> usize) {
    let mut samples = Vec::new();
    let mut rows = 0;
    let budget = Instant::now();
    for k in 0..SAMPLES {
        let start = Instant::now();
        rows = run(k).await;
        samples.push(start.elapsed());
        if budget.elapsed() > SAMPLE_BUDGET && samples.len() >= 3 {
            break;
        }
    }
    let count = samples.len();
    println!(
        "  {label}: median {} of {count} ({rows} rows)",
        ms(median(samples))
    );
}

async fn measure(clm: &Databases, fx: &Fixture, n: usize) {
    let mut secure = clm.secure.acquire().await.expect("conn");
    let mut core = clm.core.acquire().await.expect("conn");

    sample("expiring_certificates, page of 100", async |_| {
        views::expiring_certificates(&mut secure.conn(), None, &PageRequest::first(100))
            .await
            .expect("expiring")
            .items
            .len()
    })
    .await;

    if let Pool::Sqlite(pool) = &clm.secure {
        // Migration 0011's view, for the same run's before/after: julianday()
        // of every row from the first one in the index.
        sample(
            "expiring page, julianday() predicate (before 0012)",
            async |_| {
                let rows: Vec<(CertificateId,)> = sqlx::query_as(
                    "SELECT c.id FROM certificates c WHERE c.deleted_at IS NULL \
                 AND c.status IN ('active', 'expiring') \
                 AND julianday(c.not_after) > julianday('now') \
                 AND julianday(c.not_after) <= julianday('now', '+30 days') \
                 ORDER BY c.not_after, c.id LIMIT 101",
                )
                .fetch_all(pool)
                .await
                .expect("old expiring page");
                rows.len()
            },
        )
        .await;
    }

    sample("search by owner, page of 100", async |k| {
        let filter = CertificateFilter {
            owner_user_id: Some(fx.owners[(k * 37) % fx.owners.len()]),
            ..Default::default()
        };
        certificates::search_certificates(&mut secure.conn(), &filter, &PageRequest::first(100))
            .await
            .expect("search by owner")
            .items
            .len()
    })
    .await;

    sample("search by SAN (exact DNS name), page of 100", async |k| {
        let filter = CertificateFilter {
            san: Some(format!("www.host{}.example.com", (k * 7919) % n)),
            ..Default::default()
        };
        certificates::search_certificates(&mut secure.conn(), &filter, &PageRequest::first(100))
            .await
            .expect("search by SAN")
            .items
            .len()
    })
    .await;

    let all = CertificateFilter::default();
    sample(
        "keyset walk (not_after, id), first page of 100",
        async |_| {
            certificates::search_certificates(&mut secure.conn(), &all, &PageRequest::first(100))
                .await
                .expect("first page")
                .items
                .len()
        },
    )
    .await;
    // The cursor of the page before the last one: keyset pages cost the
    // same at any depth, which this shows without walking n / 100 pages.
    let last_cursor = last_page_cursor(clm).await;
    sample(
        "keyset walk (not_after, id), last page of 100",
        async |_| {
            let req = PageRequest::after(100, Some(last_cursor.clone()));
            let page = certificates::search_certificates(&mut secure.conn(), &all, &req)
                .await
                .expect("last page");
            assert!(page.next_cursor.is_none(), "not the last page");
            page.items.len()
        },
    )
    .await;

    sample("certificate_summary, first page of 100", async |_| {
        views::certificate_summary(
            &mut core.conn(),
            &CertificateSummaryFilter::default(),
            &PageRequest::first(100),
        )
        .await
        .expect("summary")
        .items
        .len()
    })
    .await;
    sample("certificate_summary by owner, page of 100", async |k| {
        let filter = CertificateSummaryFilter {
            owner_user_id: Some(fx.owners[(k * 37) % fx.owners.len()]),
            ..Default::default()
        };
        views::certificate_summary(&mut core.conn(), &filter, &PageRequest::first(100))
            .await
            .expect("summary by owner")
            .items
            .len()
    })
    .await;
    sample("certificate_summary of one certificate", async |k| {
        let id = CertificateId::from(sequential_id(fx.cert_base, (k * 7919) % n));
        usize::from(
            views::certificate_summary_for(&mut core.conn(), id)
                .await
                .expect("summary of one")
                .is_some(),
        )
    })
    .await;
}

async fn last_page_cursor(clm: &Databases) -> String {
    let sql = "SELECT not_after, id FROM certificates WHERE deleted_at IS NULL \
               ORDER BY not_after DESC, id DESC LIMIT 1 OFFSET 100";
    let (at, id): (DateTime<Utc>, CertificateId) = match &clm.secure {
        Pool::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        Pool::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .expect("last page cursor");
    format!("{}|{id}", at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

/// Bytes on disk of the rows a certificate brings: its row, its sealed key
/// and its metadata, with every index (and TOAST on PostgreSQL).
async fn bytes_per_certificate(clm: &Databases, n: usize) {
    let mut secure = Vec::new();
    let mut core = Vec::new();
    match (&clm.secure, &clm.core) {
        (Pool::Postgres(s), Pool::Postgres(c)) => {
            let sql = "SELECT pg_total_relation_size($1::regclass)::BIGINT";
            for table in ["certificates", "private_keys"] {
                let bytes: i64 = sqlx::query_scalar(sql)
                    .bind(table)
                    .fetch_one(s)
                    .await
                    .expect("size");
                secure.push((table, bytes));
            }
            let bytes: i64 = sqlx::query_scalar(sql)
                .bind("certificate_metadata")
                .fetch_one(c)
                .await
                .expect("size");
            core.push(("certificate_metadata", bytes));
        }
        (Pool::Sqlite(s), Pool::Sqlite(c)) => {
            // dbstat: the pages of each table and of each index on it.
            let sql = "SELECT COALESCE(SUM(d.pgsize), 0) FROM dbstat AS d \
                       JOIN sqlite_schema AS m ON m.name = d.name WHERE m.tbl_name = $1";
            // certificate_san_values is SQLite's index of the SANs (migration 0014).
            for table in ["certificates", "certificate_san_values", "private_keys"] {
                let bytes: i64 = sqlx::query_scalar(sql)
                    .bind(table)
                    .fetch_one(s)
                    .await
                    .expect("dbstat");
                secure.push((table, bytes));
            }
            let bytes: i64 = sqlx::query_scalar(sql)
                .bind("certificate_metadata")
                .fetch_one(c)
                .await
                .expect("dbstat");
            core.push(("certificate_metadata", bytes));
        }
        _ => return,
    }
    let per = |bytes: i64| bytes as f64 / n.max(1) as f64;
    let mut total = 0;
    for (table, bytes) in secure.iter().chain(core.iter()) {
        total += bytes;
        println!(
            "  on disk, {table} (with indexes): {:.1} MiB, {:.0} bytes per certificate",
            *bytes as f64 / (1 << 20) as f64,
            per(*bytes)
        );
    }
    let sealed: i64 = secure.iter().map(|(_, b)| b).sum();
    println!(
        "  on disk per certificate: {:.0} bytes with its sealed key (secure database), {:.0} bytes with its metadata too",
        per(sealed),
        per(total)
    );
}

async fn explain_postgres(clm: &Databases, owner: UserId) {
    let Pool::Postgres(pool) = &clm.secure else {
        return;
    };
    let plans = [
        (
            "expiring_certificates page (as views::expiring_certificates runs it)",
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM expiring_certificates WHERE 1 = 1 ORDER BY not_after, id LIMIT 101".to_string(),
        ),
        (
            "search by owner page",
            format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT id FROM certificates WHERE 1 = 1 AND deleted_at IS NULL AND (owner_user_id = '{owner}') ORDER BY not_after, id LIMIT 101"),
        ),
    ];
    for (title, sql) in plans {
        let lines: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .expect("EXPLAIN");
        println!("  EXPLAIN {title}:");
        for line in lines {
            println!("    {line}");
        }
    }
}

async fn explain_sqlite(clm: &Databases) {
    let Pool::Sqlite(pool) = &clm.secure else {
        return;
    };
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(
        "EXPLAIN QUERY PLAN SELECT * FROM expiring_certificates WHERE 1 = 1 ORDER BY not_after, id LIMIT 101",
    )
    .fetch_all(pool)
    .await
    .expect("EXPLAIN QUERY PLAN");
    println!("  EXPLAIN QUERY PLAN expiring_certificates page:");
    for (_, _, _, detail) in rows {
        println!("    {detail}");
    }
}

async fn run(label: &str, clm: Databases, n: usize, sqlite_dir: Option<&Path>) {
    println!("== {label}");
    let fx = fixture(&clm).await;
    let owner = fx.owners[0];
    let (loaded, fx) = match sqlite_dir {
        Some(dir) => (load_sqlite(&clm, &fx, n, dir).await, fx),
        None => {
            // The COPY tasks share the fixture; measuring needs it back.
            let copy = fx.clone();
            (load_postgres(&clm, copy, n).await, fx)
        }
    };
    analyze(&clm).await;
    measure(&clm, &fx, loaded).await;
    bytes_per_certificate(&clm, loaded).await;
    explain_postgres(&clm, owner).await;
    explain_sqlite(&clm).await;
    clm.close().await;
}

fn main() {
    let n: usize = std::env::var("CLM_BENCH_CERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let backends = std::env::var("CLM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        if backends.contains("sqlite") {
            let dir = tempfile::tempdir().expect("tempdir");
            let clm = common::open_databases(&ClmConfig::sqlite(dir.path())).await;
            run("sqlite", clm, n, Some(dir.path())).await;
        }
        if !backends.contains("postgres") {
            return;
        }
        match common::PgTestDb::create().await {
            Some(db) => {
                let config = db.config();
                let opened =
                    clm::db::connect(&config.database, &config.database_tls, config.pool).await;
                match opened {
                    Ok(clm) => {
                        let outcome = futures::FutureExt::catch_unwind(
                            std::panic::AssertUnwindSafe(run("postgres", clm, n, None)),
                        )
                        .await;
                        db.drop_all().await;
                        if let Err(panic) = outcome {
                            std::panic::resume_unwind(panic);
                        }
                    }
                    Err(err) => {
                        db.drop_all().await;
                        panic!("open postgres: {err}");
                    }
                }
            }
            None => println!("== postgres: skipped (unreachable)"),
        }
    });
}
