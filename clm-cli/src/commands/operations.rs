//! `audit`, `keys`, `lifecycle` and `db`: the operator's routine work.

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{AuditCommand, DbCommand, KeysCommand, LifecycleCommand, Log};
use crate::context::{Context, catch_interrupts, interrupted, read_text, write_public};
use crate::error::{CliError, CliResult, invalid};
use crate::output::{Format, Rendered, at, cell};
use crate::progress::Progress;

const AUDIT_COLUMNS: &[&str] = &[
    "sequence_number",
    "event_timestamp",
    "event_type",
    "action",
    "outcome",
    "actor_type",
    "user_id",
    "resource_type",
    "resource_id",
];

/// `180d` or `180`: days.
fn days(text: &str) -> CliResult<u32> {
    let number = text.trim().trim_end_matches(['d', 'D']);
    number.parse().map_err(|_| {
        invalid(
            "older_than",
            format!("{text:?} is not a number of days (180d)"),
        )
    })
}

/// `clm audit ...`; None when it printed as it went (`tail --follow`).
pub async fn audit(ctx: &mut Context, command: AuditCommand) -> CliResult<Option<Rendered>> {
    Ok(Some(match command {
        AuditCommand::Verify { log, checkpoint } => {
            let mut reports = Vec::new();
            match &checkpoint {
                Some(path) => {
                    let field = "checkpoint";
                    let checkpoint: Value = serde_json::from_str(&read_text(path, field)?)
                        .map_err(|err| {
                            invalid(field, format!("{} is not JSON: {err}", path.display()))
                        })?;
                    // A checkpoint names its trail by table.
                    let trail = match checkpoint["log"].as_str().unwrap_or("") {
                        "secure_audit_log" => "secure",
                        "audit_log" => "core",
                        other => other,
                    }
                    .to_string();
                    if let Some(log) = log
                        && log.name() != trail
                    {
                        return Err(invalid(
                            field,
                            format!("the checkpoint is of the {trail} trail, not {}", log.name()),
                        ));
                    }
                    reports.push(
                        ctx.call(
                            "verify_audit_chain_against_checkpoint",
                            json!({"log": trail, "checkpoint": checkpoint}),
                        )
                        .await?,
                    );
                }
                None => {
                    let logs = match log {
                        Some(log) => vec![log],
                        None => vec![Log::Secure, Log::Core],
                    };
                    for log in logs {
                        reports.push(
                            ctx.call("verify_audit_chain", json!({"log": log.name()}))
                                .await?,
                        );
                    }
                }
            }
            let broken: Vec<String> = reports
                .iter()
                .filter(|report| !report["broken"].is_null())
                .map(|report| {
                    format!(
                        "{} trail broken at row {}: {}",
                        cell(&report["log"]),
                        cell(&report["broken"]["sequence_number"]),
                        cell(&report["broken"]["reason"])
                    )
                })
                .collect();
            let rendered = Rendered::table(
                Value::Array(reports),
                &[
                    "log",
                    "rows_checked",
                    "first_sequence",
                    "last_sequence",
                    "broken.reason",
                ],
            );
            if !broken.is_empty() {
                rendered.print(ctx.format, ctx.color)?;
                return Err(CliError::Clm(clm::Error::crypto(broken.join("; "))));
            }
            rendered
        }
        AuditCommand::Tail {
            log,
            lines,
            follow,
            event_type,
        } => {
            let filter = json!({"event_type": event_type});
            let page = ctx
                .call(
                    "list_audit_events",
                    json!({"log": log.name(), "filter": filter, "page": {"limit": lines.clamp(1, 500)}}),
                )
                .await?;
            let mut events: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
            events.reverse();
            if !follow {
                return Ok(Some(Rendered::table(Value::Array(events), AUDIT_COLUMNS)));
            }
            catch_interrupts();
            let mut last = events
                .last()
                .and_then(|event| event["sequence_number"].as_i64())
                .unwrap_or(0);
            print_events(&events, ctx.format);
            while !interrupted() {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let page = ctx
                    .call(
                        "list_audit_events",
                        json!({"log": log.name(), "filter": filter, "page": {"limit": 200}}),
                    )
                    .await?;
                let mut fresh: Vec<Value> = page["items"]
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter(|event| event["sequence_number"].as_i64().unwrap_or(0) > last)
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                fresh.reverse();
                if let Some(newest) = fresh
                    .last()
                    .and_then(|event| event["sequence_number"].as_i64())
                {
                    last = newest;
                }
                print_events(&fresh, ctx.format);
            }
            return Ok(None);
        }
        AuditCommand::Archive {
            log,
            older_than,
            to,
        } => {
            let older_than_days = days(&older_than)?;
            Rendered::record(
                ctx.call(
                    "archive_audit_events",
                    json!({
                        "log": log.name(),
                        "older_than_days": older_than_days,
                        "file": to.display().to_string(),
                    }),
                )
                .await?,
            )
        }
        AuditCommand::Checkpoint { log, out } => {
            let checkpoint = ctx
                .call("audit_checkpoint", json!({"log": log.name()}))
                .await?;
            if let Some(path) = &out {
                let mut text = serde_json::to_string_pretty(&checkpoint).unwrap_or_default();
                text.push('\n');
                write_public(path, text.as_bytes(), "out")?;
            }
            Rendered::record(checkpoint)
        }
    }))
}

/// `tail --follow`'s lines: JSON lines when the output is JSON, else one
/// line per event.
fn print_events(events: &[Value], format: Format) {
    let mut stdout = std::io::stdout().lock();
    for event in events {
        let line = match format {
            Format::Json | Format::Yaml | Format::Pem => {
                serde_json::to_string(event).unwrap_or_default()
            }
            _ => AUDIT_COLUMNS
                .iter()
                .map(|column| cell(at(event, column)))
                .collect::<Vec<_>>()
                .join("  "),
        };
        let _ = writeln!(stdout, "{line}");
    }
    let _ = stdout.flush();
}

/// `clm keys ...`.
pub async fn keys(ctx: &mut Context, command: KeysCommand) -> CliResult<Rendered> {
    Ok(match command {
        KeysCommand::Status => Rendered::table(
            ctx.call("key_status", Value::Null).await?,
            &[
                "key.id",
                "key.key_version",
                "key.key_status",
                "key.activated_at",
                "private_keys",
                "mfa_secrets",
            ],
        ),
        KeysCommand::RotateData { batch_size } => {
            catch_interrupts();
            let progress = std::sync::Mutex::new(Progress::new("re-sealing keys", 0));
            // One batch per call: Ctrl-C stops between batches and the next
            // run resumes the same rotation.
            let mut batches = 0u64;
            let report = loop {
                let sink = |step: Value| {
                    if let Ok(mut progress) = progress.lock() {
                        progress.set_total(step["total"].as_u64().unwrap_or(0));
                        progress.set(step["rotated"].as_u64().unwrap_or(0));
                    }
                };
                let report = ctx
                    .call_with_progress(
                        "rotate_data_key",
                        json!({"batch_size": batch_size, "max_batches": 1}),
                        &sink,
                    )
                    .await?;
                batches += report["batches"].as_u64().unwrap_or(0);
                if report["status"] != "in_progress" {
                    break report;
                }
                if interrupted() {
                    if let Ok(mut progress) = progress.lock() {
                        progress.finish();
                    }
                    return Err(CliError::Interrupted(format!(
                        "data-key rotation {} stopped at {}/{}; `clm keys rotate-data` resumes it",
                        cell(&report["rotation_id"]),
                        cell(&report["rotated_items"]),
                        cell(&report["total_items"])
                    )));
                }
            };
            if let Ok(mut progress) = progress.lock() {
                progress.finish();
            }
            let mut report = report;
            report["batches"] = json!(batches);
            Rendered::record(report)
        }
        KeysCommand::RotateMaster { new_key_file } => {
            let mut spinner = Progress::spinner("re-wrapping data keys");
            let report = ctx
                .call(
                    "rotate_master_key",
                    json!({"new_master_key": {
                        "master_key_file": new_key_file.display().to_string(),
                        "create_master_key": true,
                    }}),
                )
                .await;
            spinner.done();
            Rendered::record(report?).with_note(format!(
                "from now on open clm with --master-key-file {} (keep the old file until backups made with it expire)",
                new_key_file.display()
            ))
        }
    })
}

/// `clm lifecycle run`.
pub async fn lifecycle(ctx: &mut Context, command: LifecycleCommand) -> CliResult<Rendered> {
    let LifecycleCommand::Run { at } = command;
    if let Some(at) = &at {
        chrono::DateTime::parse_from_rfc3339(at)
            .map_err(|err| invalid("at", format!("{at:?} is not an RFC 3339 time: {err}")))?;
    }
    let mut spinner = Progress::spinner("lifecycle run");
    let report = ctx.call("run_lifecycle", json!({"at": at})).await;
    spinner.done();
    Ok(Rendered::record(report?))
}

/// `clm db ...`.
pub async fn db(ctx: &mut Context, command: DbCommand) -> CliResult<Rendered> {
    Ok(match command {
        DbCommand::Stats => {
            let stats = ctx.call("database_stats", Value::Null).await?;
            let mut rows = Vec::new();
            for database in ["secure", "core"] {
                for table in stats[database]["tables"].as_array().into_iter().flatten() {
                    let mut row = table.clone();
                    row["database"] = json!(database);
                    rows.push(row);
                }
            }
            // The table view lists the tables; JSON and YAML keep everything.
            let mut rendered =
                Rendered::table(stats, &["database", "name", "live_rows", "total_bytes"]);
            rendered.table_rows = Some(Value::Array(rows));
            rendered
        }
        DbCommand::Maintain { vacuum, no_analyze } => Rendered::table(
            ctx.call(
                "maintain",
                json!({"vacuum": vacuum, "analyze": !no_analyze}),
            )
            .await?,
            &["database", "statement", "duration_ms"],
        )
        .rows("steps"),
    })
}
