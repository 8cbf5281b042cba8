//! Inventory benchmark: loads `CLM_BENCH_CERTS` (default 100000) synthetic
//! certificates plus their metadata rows through `insert_many` into SQLite and
//! PostgreSQL, then times the inventory queries and prints PostgreSQL's plan
//! for the expiring view.
//!
//! `cargo bench -p clm-core --bench inventory` (PostgreSQL from
//! `CLM_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432`; a fresh
//! database pair is created and dropped).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::Duration as Days;
use clm::ClmConfig;
use clm::db::Databases;
use clm::model::*;
use clm::store::certificates::{self, CertificateFilter};
use clm::store::views;
use clm::store::{PageRequest, certificate_metadata, now, users};
use sqlx::AssertSqlSafe;

const BATCH: usize = 5_000;
const OWNERS: usize = 1_000;
const SAMPLES: usize = 41;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// A cheap deterministic generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

async fn load(clm: &Databases, n: usize) -> Vec<UserId> {
    let mut core = clm.core.acquire().await.expect("core");
    let owners: Vec<User> = (0..OWNERS)
        .map(|i| common::user(&format!("owner{i}")))
        .collect();
    for owner in &owners {
        users::insert(&mut core.conn(), owner).await.expect("owner");
    }
    drop(core);
    let owner_ids: Vec<UserId> = owners.iter().map(|u| u.id).collect();

    let mut rng = Lcg(42);
    let t = now();
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let size = BATCH.min(n - done);
        let mut certs = Vec::with_capacity(size);
        let mut metas = Vec::with_capacity(size);
        for i in 0..size {
            // not_after uniform over [-365, +730) days: ~2.7% expire within 30 days.
            let minutes = (rng.next() % (1095 * 1440)) as i64 - 365 * 1440;
            let mut cert = common::certificate(
                &format!("host{}.example.com", done + i),
                t + Days::minutes(minutes),
            );
            cert.owner_user_id = Some(owner_ids[(rng.next() as usize) % OWNERS]);
            cert.status = if minutes <= 0 {
                CertificateStatus::Expired
            } else if rng.next().is_multiple_of(100) {
                CertificateStatus::Revoked
            } else {
                CertificateStatus::Active
            };
            let mut meta = common::metadata(cert.id);
            meta.owner_user_id = cert.owner_user_id;
            meta.not_after = Some(cert.not_after);
            meta.common_name = cert.common_name.clone();
            certs.push(cert);
            metas.push(meta);
        }
        let mut tx = clm.secure.begin().await.expect("begin");
        certificates::insert_many(&mut tx.conn(), &certs)
            .await
            .expect("insert certs");
        tx.commit().await.expect("commit");
        let mut tx = clm.core.begin().await.expect("begin");
        certificate_metadata::insert_many(&mut tx.conn(), &metas)
            .await
            .expect("insert metadata");
        tx.commit().await.expect("commit");
        done += size;
    }
    let elapsed = started.elapsed();
    println!(
        "  load: {n} certificates + {n} metadata rows in {:.1} s ({:.0} certificates/s incl. metadata)",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );
    owner_ids
}

async fn analyze(clm: &Databases) {
    for pool in [&clm.secure, &clm.core] {
        let mut conn = pool.acquire().await.expect("conn");
        common::raw(&mut conn.conn(), "ANALYZE", Vec::new())
            .await
            .expect("ANALYZE");
    }
}

async fn measure(clm: &Databases, owners: &[UserId]) {
    let mut pooled = clm.secure.acquire().await.expect("conn");
    let mut c = pooled.conn();

    let mut samples = Vec::new();
    let mut rows = 0;
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let page = views::expiring_certificates(&mut c, None, &PageRequest::first(100))
            .await
            .expect("expiring");
        samples.push(start.elapsed());
        rows = page.items.len();
    }
    println!(
        "  expiring_certificates, page of 100: median {} ({rows} rows)",
        ms(median(samples))
    );

    let mut samples = Vec::new();
    for i in 0..SAMPLES {
        let filter = CertificateFilter {
            owner_user_id: Some(owners[(i * 37) % owners.len()]),
            ..Default::default()
        };
        let start = Instant::now();
        certificates::search_certificates(&mut c, &filter, &PageRequest::first(100))
            .await
            .expect("search by owner");
        samples.push(start.elapsed());
    }
    println!(
        "  search by owner, page of 100: median {}",
        ms(median(samples))
    );

    let filter = CertificateFilter::default();
    let mut req = PageRequest::first(100);
    let mut times = Vec::new();
    let mut total = 0;
    let walk = Instant::now();
    loop {
        let start = Instant::now();
        let page = certificates::search_certificates(&mut c, &filter, &req)
            .await
            .expect("walk");
        times.push(start.elapsed());
        total += page.items.len();
        match page.next_cursor {
            Some(cursor) => req = PageRequest::after(100, Some(cursor)),
            None => break,
        }
    }
    let pages = times.len();
    let tail = &times[pages.saturating_sub(10)..];
    println!(
        "  keyset walk (not_after, id), pages of 100: {pages} pages / {total} rows in {:.2} s; first page {}, last page {}, median of last 10 {}",
        walk.elapsed().as_secs_f64(),
        ms(times[0]),
        ms(times[pages - 1]),
        ms(median(tail.to_vec()))
    );
}

async fn explain_postgres(clm: &Databases, owner: UserId) {
    let clm::db::Pool::Postgres(pool) = &clm.secure else {
        return;
    };
    let plans = [
        (
            "expiring_certificates page (as views::expiring_certificates runs it)",
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM expiring_certificates WHERE 1 = 1 ORDER BY not_after, id LIMIT 101".to_string(),
        ),
        (
            "SELECT * FROM expiring_certificates (the summary's query)",
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM expiring_certificates".to_string(),
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
    let clm::db::Pool::Sqlite(pool) = &clm.secure else {
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

async fn run(label: &str, clm: Databases, n: usize) {
    println!("== {label}");
    let owners = load(&clm, n).await;
    analyze(&clm).await;
    measure(&clm, &owners).await;
    explain_postgres(&clm, owners[0]).await;
    explain_sqlite(&clm).await;
    clm.close().await;
}

fn main() {
    let n: usize = std::env::var("CLM_BENCH_CERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let clm = common::open_databases(&ClmConfig::sqlite(dir.path())).await;
        run("sqlite", clm, n).await;

        match common::PgTestDb::create().await {
            Some(db) => {
                let config = db.config();
                let opened =
                    clm::db::connect(&config.database, &config.database_tls, config.pool).await;
                match opened {
                    Ok(clm) => {
                        let outcome = futures::FutureExt::catch_unwind(
                            std::panic::AssertUnwindSafe(run("postgres", clm, n)),
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
