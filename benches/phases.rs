//! `CLM_BENCH_PHASES=1`: where an issuance's time goes, from clm's own
//! spans (`issue_certificate`, `issuance_signing`, the `transaction` halves
//! with their `begin_ms` and `commit_ms`), summed per run and printed per
//! issuance. With one caller the phases follow each other; with many they
//! overlap and a batch's transactions are shared, so read them per batch.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

#[derive(Default)]
struct Fields {
    half: Option<String>,
    begin_ms: Option<f64>,
    commit_ms: Option<f64>,
    work_ms: Option<f64>,
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match field.name() {
            "begin_ms" => self.begin_ms = Some(value),
            "commit_ms" => self.commit_ms = Some(value),
            "work_ms" => self.work_ms = Some(value),
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "half" {
            self.half = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

struct Timing {
    started: Instant,
    fields: Fields,
}

/// Phase name -> (milliseconds summed, spans counted).
static TOTALS: Mutex<BTreeMap<String, (f64, u64)>> = Mutex::new(BTreeMap::new());

const TIMED: [&str; 3] = ["issue_certificate", "issuance_signing", "transaction"];

pub struct PhaseLayer;

impl<S> Layer<S> for PhaseLayer
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !TIMED.contains(&attrs.metadata().name()) {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                started: Instant::now(),
                fields,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(timing) = span.extensions_mut().get_mut::<Timing>()
        {
            values.record(&mut timing.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(timing) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        let total = timing.started.elapsed().as_secs_f64() * 1000.0;
        let fields = timing.fields;
        let mut phases: Vec<(String, f64)> = Vec::new();
        match span.name() {
            "issue_certificate" => phases.push(("issue_certificate: the whole call".into(), total)),
            "issuance_signing" => {
                let work = fields.work_ms.unwrap_or(0.0);
                phases.push((
                    "signing: waiting for a CPU slot and thread".into(),
                    total - work,
                ));
                phases.push(("signing: (key,) certificate, self-check, OCSP".into(), work));
            }
            _ => {
                let half = fields.half.unwrap_or_else(|| "other".into());
                let begin = fields.begin_ms.unwrap_or(0.0);
                let commit = fields.commit_ms.unwrap_or(0.0);
                phases.push((
                    format!("transaction {half}: connection, BEGIN, locks"),
                    begin,
                ));
                phases.push((
                    format!("transaction {half}: statements"),
                    total - begin - commit,
                ));
                phases.push((format!("transaction {half}: COMMIT"), commit));
            }
        }
        let mut totals = TOTALS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (phase, ms) in phases {
            let entry = totals.entry(phase).or_default();
            entry.0 += ms;
            entry.1 += 1;
        }
    }
}

/// Installs the layer when CLM_BENCH_PHASES=1.
pub fn install() {
    if std::env::var("CLM_BENCH_PHASES").as_deref() != Ok("1") {
        return;
    }
    use tracing_subscriber::layer::SubscriberExt;
    let subscriber = tracing_subscriber::registry().with(PhaseLayer.with_filter(
        tracing_subscriber::filter::Targets::new().with_target("clm", tracing::Level::DEBUG),
    ));
    if let Err(err) = tracing::subscriber::set_global_default(subscriber) {
        panic!("phase timing: {err}");
    }
}

fn take() -> BTreeMap<String, (f64, u64)> {
    std::mem::take(&mut *TOTALS.lock().unwrap_or_else(|p| p.into_inner()))
}

/// Forgets what was summed so far (the set-up's spans).
pub fn clear() {
    take();
}

/// Prints what the last run's spans summed to, per issuance, and starts over.
pub fn report(label: &str, run: &str, issuances: usize) {
    let totals = take();
    for (phase, (ms, spans)) in totals {
        println!(
            "{label:<10}   {run}: {phase:<48} {:>7.1} us per issuance ({spans} spans)",
            ms * 1000.0 / issuances as f64
        );
    }
}
