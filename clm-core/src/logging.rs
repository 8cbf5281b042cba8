//! Hands clm's `tracing` records to a host that has no `tracing` subscriber
//! of its own: the Python, Node and C bindings forward them to `logging`, a
//! JavaScript callback and a C callback through [`forward_to`].
//!
//! A Rust host does not need this module: clm emits ordinary `tracing`
//! spans and events (and sqlx its statements), which any subscriber the
//! host installs receives. [`ForwardLayer`] is public so a host that wants
//! clm's one-line records can stack it on its own registry.
//!
//! What the records carry is what the spans and events carry: operation
//! names, actor kinds, organizations, outcomes, durations, SQL text, never
//! a bound parameter or a secret (`tests/observability.rs` checks).

use std::fmt::Write as _;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::{Error, Result};

/// The levels records carry (`tracing`'s), for hosts that do not use it.
pub use tracing::Level;

/// One record for a host's sink: a finished span or an event, formatted on
/// one line with the fields of the spans it happened in.
#[derive(Debug, Clone, Copy)]
pub struct LogRecord<'a> {
    /// The event's level, or the span's for a closed span.
    pub level: Level,
    /// Where it comes from: `clm::service::identity`, `sqlx::query`, ...
    pub target: &'a str,
    /// The message, its fields and the spans around it, e.g.
    /// `create_user{actor=system}: transaction{outcome=committed duration_ms=1.2}: closed`.
    pub message: &'a str,
}

/// Receives every record at or above the forwarding level, on whichever
/// thread emitted it (a tokio worker, a database worker, the caller's).
pub type LogSink = Arc<dyn Fn(&LogRecord<'_>) + Send + Sync>;

/// Reads a level name as the bindings take it: `error`, `warn`
/// (`warning`), `info`, `debug` or `trace`, any case.
pub fn parse_level(name: &str) -> Result<Level> {
    match name.trim().to_ascii_lowercase().as_str() {
        "error" => Ok(Level::ERROR),
        "warn" | "warning" => Ok(Level::WARN),
        "info" => Ok(Level::INFO),
        "debug" => Ok(Level::DEBUG),
        "trace" => Ok(Level::TRACE),
        _ => Err(Error::invalid(
            "level",
            format!("{name:?} is not one of error, warn, info, debug, trace"),
        )),
    }
}

/// Sends every record at `min_level` or above to `sink` (replacing any
/// previous sink). The first call installs clm's subscriber as the process's
/// global `tracing` subscriber; when something else installed one already,
/// this fails with a Configuration error and that subscriber keeps
/// receiving clm's records.
pub fn forward_to(sink: LogSink, min_level: Level) -> Result<()> {
    install_global()?;
    let mut slot = GLOBAL_SINK
        .write()
        .map_err(|_| Error::Internal("the log sink lock is poisoned".into()))?;
    *slot = Some(sink);
    GLOBAL_LEVEL.store(level_rank(min_level), Ordering::SeqCst);
    drop(slot);
    // Callsites cached as disabled must ask again under the new level.
    tracing::callsite::rebuild_interest_cache();
    Ok(())
}

/// Stops forwarding (the sink is dropped; records cost nothing again).
pub fn stop_forwarding() {
    GLOBAL_LEVEL.store(OFF, Ordering::SeqCst);
    if let Ok(mut slot) = GLOBAL_SINK.write() {
        *slot = None;
    }
    tracing::callsite::rebuild_interest_cache();
}

static GLOBAL_SINK: RwLock<Option<LogSink>> = RwLock::new(None);
static GLOBAL_LEVEL: AtomicU8 = AtomicU8::new(OFF);
static INSTALLED: OnceLock<std::result::Result<(), String>> = OnceLock::new();

fn install_global() -> Result<()> {
    INSTALLED
        .get_or_init(|| {
            use tracing_subscriber::layer::SubscriberExt;
            let subscriber = tracing_subscriber::registry().with(ForwardLayer::global());
            tracing::subscriber::set_global_default(subscriber).map_err(|_| {
                "another tracing subscriber is already installed in this process: \
                 clm's records go to it"
                    .to_string()
            })
        })
        .clone()
        .map_err(Error::Configuration)
}

const OFF: u8 = 0;

/// ERROR = 1 ... TRACE = 5: a record passes when its rank is at most the
/// forwarding rank (0 lets nothing through).
fn level_rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        _ => 5,
    }
}

fn rank_filter(rank: u8) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match rank {
        OFF => LevelFilter::OFF,
        1 => LevelFilter::ERROR,
        2 => LevelFilter::WARN,
        3 => LevelFilter::INFO,
        4 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Where a [`ForwardLayer`] sends its records and from which level.
enum Destination {
    /// The process-wide sink of [`forward_to`] (changeable at any time).
    Global,
    Fixed(LogSink, u8),
}

/// A `tracing_subscriber` layer that formats each event, and each span as
/// it closes (with its duration and outcome), into one [`LogRecord`].
pub struct ForwardLayer {
    destination: Destination,
}

impl ForwardLayer {
    /// A layer sending records at `min_level` or above to `sink`.
    pub fn new(sink: LogSink, min_level: Level) -> ForwardLayer {
        ForwardLayer {
            destination: Destination::Fixed(sink, level_rank(min_level)),
        }
    }

    fn global() -> ForwardLayer {
        ForwardLayer {
            destination: Destination::Global,
        }
    }

    fn rank(&self) -> u8 {
        match &self.destination {
            Destination::Global => GLOBAL_LEVEL.load(Ordering::Relaxed),
            Destination::Fixed(_, rank) => *rank,
        }
    }

    fn passes(&self, level: &Level) -> bool {
        level_rank(*level) <= self.rank()
    }

    fn send(&self, level: Level, target: &str, message: &str) {
        let sink = match &self.destination {
            Destination::Global => match GLOBAL_SINK.read() {
                Ok(slot) => slot.clone(),
                Err(_) => None,
            },
            Destination::Fixed(sink, _) => Some(sink.clone()),
        };
        let Some(sink) = sink else { return };
        // A sink that logs through clm again (a callback calling an
        // operation) would feed itself: records made inside it are dropped.
        if IN_SINK.with(|inside| inside.replace(true)) {
            return;
        }
        let record = LogRecord {
            level,
            target,
            message,
        };
        // A panicking sink loses its record, never the operation.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| sink(&record)));
        IN_SINK.with(|inside| inside.set(false));
    }
}

thread_local! {
    static IN_SINK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A span's formatted fields, its start and the outcome an event in it
/// reported (the `error` field `#[instrument(err)]` emits).
struct SpanState {
    fields: String,
    started: Instant,
    error: Option<String>,
}

/// Formats fields as ` name=value` pairs; `message` is kept apart.
#[derive(Default)]
struct FieldText {
    message: String,
    fields: String,
    error: Option<String>,
}

impl Visit for FieldText {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            name => {
                if name == "error" {
                    self.error = Some(format!("{value:?}"));
                }
                let _ = write!(self.fields, " {name}={value:?}");
            }
        }
    }
}

impl<S> Layer<S> for ForwardLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(
        &self,
        _metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // The level can change at run time: ask `enabled` each time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // As the process's only layer it filters for everyone; stacked on a
        // host's registry it leaves the other layers their records.
        match self.destination {
            Destination::Global => self.passes(metadata.level()),
            Destination::Fixed(..) => true,
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        match self.destination {
            Destination::Global => Some(rank_filter(self.rank())),
            Destination::Fixed(..) => None,
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut text = FieldText::default();
        attrs.record(&mut text);
        span.extensions_mut().insert(SpanState {
            fields: text.fields,
            started: Instant::now(),
            error: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut text = FieldText::default();
        values.record(&mut text);
        if let Some(state) = span.extensions_mut().get_mut::<SpanState>() {
            state.fields.push_str(&text.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut text = FieldText::default();
        event.record(&mut text);
        // `#[instrument(err)]` reports a failed operation with an event
        // carrying `error` inside its span: that is the span's outcome.
        if let (Some(error), Some(span)) = (&text.error, ctx.event_span(event))
            && let Some(state) = span.extensions_mut().get_mut::<SpanState>()
        {
            state.error = Some(error.clone());
        }
        if !self.passes(event.metadata().level()) {
            return;
        }
        let mut line = scope_text(ctx.event_scope(event));
        line.push_str(&text.message);
        line.push_str(&text.fields);
        self.send(*event.metadata().level(), event.metadata().target(), &line);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let metadata = span.metadata();
        if !self.passes(metadata.level()) {
            return;
        }
        let mut line = scope_text(span.parent().map(|parent| parent.scope()));
        {
            let extensions = span.extensions();
            let Some(state) = extensions.get::<SpanState>() else {
                return;
            };
            let millis = state.started.elapsed().as_secs_f64() * 1000.0;
            let outcome = state.error.as_deref().unwrap_or("ok");
            let _ = write!(
                line,
                "{}{{{}}}: finished outcome={outcome} duration_ms={millis:.1}",
                metadata.name(),
                state.fields.trim_start()
            );
        }
        // No lock of the registry is held while the sink runs.
        self.send(*metadata.level(), metadata.target(), &line);
    }
}

/// `outer{fields}: inner{fields}: ` for the spans an event or span is in.
fn scope_text<'a, R>(scope: Option<tracing_subscriber::registry::Scope<'a, R>>) -> String
where
    R: LookupSpan<'a>,
{
    let mut line = String::new();
    let Some(scope) = scope else { return line };
    for span in scope.from_root() {
        let extensions = span.extensions();
        let fields = extensions
            .get::<SpanState>()
            .map(|state| state.fields.trim_start())
            .unwrap_or("");
        let _ = write!(line, "{}{{{fields}}}: ", span.name());
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_are_read_and_a_wrong_one_is_named() {
        assert_eq!(parse_level("WARNING").ok(), Some(Level::WARN));
        assert_eq!(parse_level(" debug ").ok(), Some(Level::DEBUG));
        let err = parse_level("loud").err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("\"loud\"")),
            "{err:?}"
        );
    }

    #[test]
    fn a_fixed_layer_formats_events_in_their_spans_and_closed_spans_with_outcome() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines: Arc<std::sync::Mutex<Vec<(Level, String)>>> = Arc::default();
        let seen = lines.clone();
        let sink: LogSink = Arc::new(move |record: &LogRecord<'_>| {
            if let Ok(mut lines) = seen.lock() {
                lines.push((record.level, record.message.to_string()));
            }
        });
        let subscriber = tracing_subscriber::registry().with(ForwardLayer::new(sink, Level::DEBUG));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "create_role",
                actor = "user",
                organization = tracing::field::Empty
            );
            let _inside = span.enter();
            span.record("organization", "org-1");
            tracing::info!(rule = "max_validity_days", "refused");
            tracing::trace!("too fine to pass");
            tracing::info!(error = "permission denied: create on roles");
        });
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        let texts: Vec<&str> = lines.iter().map(|(_, text)| text.as_str()).collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert_eq!(
            texts[0],
            "create_role{actor=user organization=org-1}: refused rule=max_validity_days"
        );
        assert!(
            texts[2].starts_with("create_role{actor=user organization=org-1}: finished outcome=permission denied: create on roles duration_ms="),
            "{}",
            texts[2]
        );
        assert_eq!(lines[2].0, Level::INFO);
    }
}
