//! Connection loss: a TCP proxy (tokio, in the test) between clm and
//! PostgreSQL cuts every open connection, again and again, while callers
//! issue, revoke and sign CRLs, so transactions die half-way and commits go
//! unanswered. The pools recover once the cutting stops, and nothing is
//! half-written: after `reconcile` the invariants hold, and every
//! certificate a caller was told about exists with its key.

use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clm::Clm;
use clm::model::{CertificateId, RevocationReason};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::common::PgTestDb;
use crate::common::invariants::{assert_invariants, assert_issued_with_keys};
use crate::wf_support::{leaf, policy, root_ca, rules};
use crate::{ErrorTally, config_at};

/// Forwards 127.0.0.1:`port` to `upstream`; [`Proxy::cut`] closes every
/// connection open at that moment (both sides), new ones go through.
struct Proxy {
    port: u16,
    cut: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    severed: Arc<AtomicU64>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (cut, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let severed = Arc::new(AtomicU64::new(0));
        let accept_loop = {
            let (cut, accepted, severed) = (cut.clone(), accepted.clone(), severed.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let mut cut = cut.subscribe();
                    let (upstream, severed) = (upstream.clone(), severed.clone());
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {
                                severed.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        // Both sockets drop here: the client reads EOF and
                        // the server sees its client gone (and rolls back
                        // whatever was open).
                    });
                }
            })
        };
        Proxy {
            port,
            cut,
            accepted,
            severed,
            accept_loop,
        }
    }

    fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
        self.cut();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_pools_recover_from_connections_cut_mid_transaction() {
    let Some(db) = PgTestDb::create().await else {
        return;
    };
    let base = sqlx::postgres::PgConnectOptions::from_str(&crate::common::pg_base_url())
        .expect("CLM_TEST_PG_URL");
    let proxy = Proxy::start(format!("{}:{}", base.get_host(), base.get_port())).await;
    let mut config = config_at(proxy.port, Duration::from_secs(5));
    if let clm::db::DatabaseConfig::Postgres {
        secure_url,
        core_url,
        ..
    } = &mut config.database
    {
        let user = base.get_username();
        *secure_url = format!(
            "postgres://{user}@127.0.0.1:{}/{}",
            proxy.port, db.secure_name
        );
        *core_url = format!(
            "postgres://{user}@127.0.0.1:{}/{}",
            proxy.port, db.core_name
        );
    }
    let clm = Clm::open(config).await.expect("open through the proxy");
    let system = clm.system_actor();
    let ca = root_ca(&clm, None).await;
    let pol = policy(&clm, None, rules(false, None)).await;

    let cutting = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    // (certificate, issued after the last cut)
    let issued: Arc<Mutex<Vec<(CertificateId, bool)>>> = Arc::default();
    let crl_numbers: Arc<Mutex<Vec<i64>>> = Arc::default();
    let errors = Arc::new(ErrorTally::default());
    // Errors of calls that started after the last cut: there must be none.
    let errors_after = Arc::new(ErrorTally::default());
    let tally = {
        let (errors, errors_after) = (errors.clone(), errors_after.clone());
        move |started_quiet: bool, err: &clm::Error| {
            if started_quiet {
                errors_after.add(err)
            } else {
                errors.add(err)
            }
        }
    };
    let tally = Arc::new(tally);
    let mut callers = Vec::new();
    for caller in 0..6 {
        let (clm, ca, pol) = (clm.clone(), ca.clone(), pol.clone());
        let (cutting, stop, issued, tally) =
            (cutting.clone(), stop.clone(), issued.clone(), tally.clone());
        callers.push(tokio::spawn(async move {
            let system = clm.system_actor();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let name = format!("p{caller}-{n}.example.com");
                let quiet = !cutting.load(Ordering::SeqCst);
                match clm
                    .issue_certificate(&system, leaf(&ca, &pol, None, &name, 30))
                    .await
                    .and_then(|outcome| outcome.into_certificate())
                {
                    Ok(certificate) => issued.lock().expect("issued").push((certificate.id, quiet)),
                    Err(err) => tally(quiet, &err),
                }
            }
        }));
    }
    {
        // One caller revokes what the others issued; one signs CRLs.
        let (clm, stop, issued, tally, cutting) = (
            clm.clone(),
            stop.clone(),
            issued.clone(),
            tally.clone(),
            cutting.clone(),
        );
        callers.push(tokio::spawn(async move {
            let system = clm.system_actor();
            let mut next = 0;
            while !stop.load(Ordering::SeqCst) {
                let quiet = !cutting.load(Ordering::SeqCst);
                let target = issued.lock().expect("issued").get(next).map(|(id, _)| *id);
                let Some(id) = target else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                match clm
                    .revoke_certificate(&system, id, RevocationReason::Superseded, None)
                    .await
                {
                    Ok(_) => next += 3,
                    // Revoked by a call whose answer was cut: done.
                    Err(err) if err.code() == clm::ErrorCode::Conflict => next += 3,
                    Err(err) => tally(quiet, &err),
                }
            }
        }));
    }
    {
        let (clm, stop, tally, cutting, crl_numbers, issuer) = (
            clm.clone(),
            stop.clone(),
            tally.clone(),
            cutting.clone(),
            crl_numbers.clone(),
            ca.certificate.id,
        );
        callers.push(tokio::spawn(async move {
            let system = clm.system_actor();
            while !stop.load(Ordering::SeqCst) {
                let quiet = !cutting.load(Ordering::SeqCst);
                match clm.generate_crl(&system, issuer, None).await {
                    Ok(crl) => crl_numbers.lock().expect("crls").push(crl.crl_number),
                    Err(err) => tally(quiet, &err),
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }));
    }

    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        proxy.cut();
    }
    cutting.store(false, Ordering::SeqCst);
    let started = Instant::now();
    while issued
        .lock()
        .expect("issued")
        .iter()
        .filter(|(_, quiet)| *quiet)
        .count()
        < 24
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the pools did not recover after the cuts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for caller in callers {
        caller.await.expect("caller");
    }

    assert!(
        proxy.severed.load(Ordering::SeqCst) > 0,
        "connections were cut"
    );
    assert!(errors.total() > 0, "callers on cut connections got errors");
    assert_eq!(
        errors_after.total(),
        0,
        "no errors once the cutting stopped: {:?}",
        errors_after.snapshot()
    );
    let numbers = crl_numbers.lock().expect("crls").clone();
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "CRL numbers strictly increasing: {numbers:?}"
    );
    let repaired = clm.reconcile(&system).await.expect("reconcile");
    let ids: Vec<CertificateId> = issued
        .lock()
        .expect("issued")
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_issued_with_keys(&clm, &ids).await;
    let counts = assert_invariants(&clm, &crate::common::test_master_key()).await;
    eprintln!(
        "proxy: {} connections, {} cut; {} certificates issued, {} CRLs; errors {:?}; \
         reconcile wrote {} metadata rows; {counts:?}",
        proxy.accepted.load(Ordering::SeqCst),
        proxy.severed.load(Ordering::SeqCst),
        ids.len(),
        numbers.len(),
        errors.snapshot(),
        repaired.metadata_created
    );
    clm.close().await;
    drop(proxy);
    db.drop_all().await;
}
