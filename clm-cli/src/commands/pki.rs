//! `ca`, `cert`, `csr`, `key` and `crl`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use base64::Engine as _;
use clm::crypto::{DistinguishedName, KeyAlgorithm, KeyPair, PemLabel, build_csr, der_to_pem};
use serde_json::{Value, json};

use super::{certificate_id, optional_uuid, policy_id, sans, subject};
use crate::cli::{
    CaCommand, CertCommand, CrlCommand, CsrCommand, ExportFormat, IssueCommon, KeyCommand,
    NewCaArgs, RolloverArgs, RolloverCommand,
};
use crate::context::{
    Context, catch_interrupts, interrupted, read_secret_line, read_text, write_private,
    write_public,
};
use crate::error::{CliError, CliResult, invalid};
use crate::output::Rendered;
use crate::progress::Progress;

/// Columns of certificate listings.
pub const CERTIFICATE_COLUMNS: &[&str] = &[
    "id",
    "common_name",
    "status",
    "not_after",
    "serial_number",
    "certificate_kind",
];

fn new_ca(args: &NewCaArgs) -> CliResult<Value> {
    Ok(json!({
        "subject": subject(&args.subject),
        "key_algorithm": args.key_algorithm,
        "validity_days": args.validity_days,
        "path_len": args.path_len,
        "crl_distribution_points": args.crl_urls,
        "ca_issuers_urls": args.ca_issuers_urls,
        "ocsp_urls": args.ocsp_urls,
        "permitted_subtrees": sans(&args.permitted)?,
        "excluded_subtrees": sans(&args.excluded)?,
        "delta_crls": args.delta_crls,
        "crl_partitions": args.crl_partitions,
        "organization_id": optional_uuid(&args.organization_id, "organization_id")?,
    }))
}

fn authority(value: Value) -> Rendered {
    let pem = value["certificate"]["certificate_pem"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Rendered::record(value).with_pem(pem)
}

fn rollover_options(args: &RolloverArgs) -> Value {
    json!({
        "key_algorithm": args.key_algorithm,
        "validity_days": args.validity_days,
        "overlap_days": args.overlap_days,
    })
}

/// `clm ca ...`.
pub async fn ca(ctx: &mut Context, command: CaCommand) -> CliResult<Rendered> {
    Ok(match command {
        CaCommand::CreateRoot(args) => {
            let new = new_ca(&args)?;
            authority(ctx.call("create_root_ca", json!({"new": new})).await?)
        }
        CaCommand::CreateIntermediate { issuer, new } => {
            let issuer = certificate_id(ctx, &issuer).await?;
            let new = new_ca(&new)?;
            authority(
                ctx.call(
                    "create_intermediate_ca",
                    json!({"issuer_id": issuer, "new": new}),
                )
                .await?,
            )
        }
        CaCommand::List => {
            let list = ctx.call("list_authorities", Value::Null).await?;
            let pem: String = list
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item["certificate"]["certificate_pem"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            Rendered::table(
                list,
                &[
                    "certificate.id",
                    "certificate.common_name",
                    "certificate.certificate_kind",
                    "certificate.status",
                    "certificate.not_after",
                    "certificate.issuer_certificate_id",
                ],
            )
            .with_pem(pem)
        }
        CaCommand::Show { id } => {
            let id = certificate_id(ctx, &id).await?;
            let certificate = ctx.call("get_certificate", json!({"id": id})).await?;
            if certificate["is_ca"] != Value::Bool(true) {
                return Err(invalid("id", format!("{id} is not a CA certificate")));
            }
            let pem = certificate["certificate_pem"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Rendered::record(certificate).with_pem(pem)
        }
        CaCommand::Rollover(command) => rollover(ctx, command).await?,
    })
}

async fn rollover(ctx: &mut Context, command: RolloverCommand) -> CliResult<Rendered> {
    Ok(match command {
        RolloverCommand::Plan(args) => {
            let id = certificate_id(ctx, &args.id).await?;
            Rendered::record(
                ctx.call(
                    "plan_ca_rollover",
                    json!({"ca_id": id, "options": rollover_options(&args)}),
                )
                .await?,
            )
        }
        RolloverCommand::Status { id } => {
            let id = certificate_id(ctx, &id).await?;
            let status = ctx.call("ca_rollover_status", json!({"ca_id": id})).await?;
            let pem = status["trust_bundle_pem"].as_str().map(str::to_string);
            let rendered = Rendered::record(status);
            match pem {
                Some(pem) => rendered.with_pem(pem),
                None => rendered,
            }
        }
        RolloverCommand::Run { args, batch_size } => {
            let id = certificate_id(ctx, &args.id).await?;
            let plan = ctx
                .call(
                    "plan_ca_rollover",
                    json!({"ca_id": id, "options": rollover_options(&args)}),
                )
                .await?;
            let total = plan["leaves_to_reissue"].as_u64().unwrap_or(0);
            catch_interrupts();
            let progress = std::sync::Mutex::new(Progress::new("reissuing leaves", total));
            // One batch per call: Ctrl-C stops between batches, and the next
            // run resumes at the rollover's recorded stage.
            let report = loop {
                let sink = |step: Value| {
                    if let Ok(mut progress) = progress.lock() {
                        progress.set(step["leaves_seen"].as_u64().unwrap_or(0));
                    }
                };
                let report = ctx
                    .call_with_progress(
                        "run_ca_rollover",
                        json!({
                            "ca_id": id,
                            "options": rollover_options(&args),
                            "batch_size": batch_size,
                            "max_batches": 1,
                        }),
                        &sink,
                    )
                    .await?;
                let status = report["rollover"]["status"].as_str().unwrap_or("");
                if status != "in_progress" {
                    break report;
                }
                if interrupted() {
                    if let Ok(mut progress) = progress.lock() {
                        progress.finish();
                    }
                    return Err(CliError::Interrupted(format!(
                        "the rollover of {id} stopped between batches; `clm ca rollover run {id}` resumes it"
                    )));
                }
            };
            if let Ok(mut progress) = progress.lock() {
                progress.finish();
            }
            Rendered::record(report)
        }
    })
}

async fn issue_request(
    ctx: &mut Context,
    common: &IssueCommon,
    mut request: Value,
) -> CliResult<Value> {
    request["issuer_id"] = Value::String(certificate_id(ctx, &common.issuer).await?);
    request["validity_days"] = json!(common.validity_days);
    request["kind"] = json!(common.kind.name());
    request["organization_id"] = optional_uuid(&common.organization_id, "organization_id")?;
    request["owner_user_id"] = optional_uuid(&common.owner, "owner")?;
    if let Some(policy) = &common.policy {
        request["policy_id"] = Value::String(policy_id(ctx, policy).await?);
    }
    Ok(request)
}

/// Prints an issuance outcome; writes the certificate when issued.
fn outcome(value: Value, cert_out: Option<&Path>) -> CliResult<Rendered> {
    match value["outcome"].as_str() {
        Some("issued") => {
            let pem = value["certificate"]["certificate_pem"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(path) = cert_out {
                write_public(path, pem.as_bytes(), "cert_out")?;
            }
            Ok(Rendered::record(value).with_pem(pem))
        }
        _ => Ok(Rendered::record(value).with_note(
            "the policy needs approval: the request waits in a workflow (clm approvals list)",
        )),
    }
}

async fn export_key(
    ctx: &mut Context,
    id: &str,
    out: &Path,
    password_file: Option<&Path>,
) -> CliResult<()> {
    let password = password_file
        .map(|path| read_secret_line(path, "password_file"))
        .transpose()?;
    let key = ctx
        .call(
            "export_private_key",
            json!({
                "certificate_id": id,
                "options": {"password": password.as_deref().map(String::as_str)},
            }),
        )
        .await?;
    let pem = zeroize::Zeroizing::new(key.as_str().unwrap_or_default().to_string());
    write_private(out, pem.as_bytes(), "key_out")
}

/// Refuses an output file in a directory that does not exist, before any write.
fn check_out(path: Option<&Path>, field: &str) -> CliResult<()> {
    if let Some(path) = path {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|parent| !parent.is_dir()) || path.is_dir() {
            return Err(invalid(
                field,
                format!("cannot write {}: no such directory", path.display()),
            ));
        }
    }
    Ok(())
}

/// `clm cert ...`.
pub async fn cert(ctx: &mut Context, command: CertCommand) -> CliResult<Rendered> {
    Ok(match command {
        CertCommand::Issue {
            common,
            subject: names,
            sans: san_values,
            key_algorithm,
            key_out,
        } => {
            check_out(common.cert_out.as_deref(), "cert_out")?;
            check_out(key_out.as_deref(), "key_out")?;
            let request = json!({
                "subject": subject(&names),
                "sans": sans(&san_values)?,
                "key_algorithm": key_algorithm,
            });
            let request = issue_request(ctx, &common, request).await?;
            let issued = ctx
                .call("issue_certificate", json!({"request": request}))
                .await?;
            if let (Some(path), Some(id)) = (&key_out, issued["certificate"]["id"].as_str()) {
                let id = id.to_string();
                export_key(ctx, &id, path, None).await?;
            }
            outcome(issued, common.cert_out.as_deref())?
        }
        CertCommand::SignCsr { common, csr } => {
            check_out(common.cert_out.as_deref(), "cert_out")?;
            let csr = read_text(&csr, "csr")?;
            let request = issue_request(ctx, &common, json!({"csr": csr})).await?;
            let issued = ctx
                .call("issue_certificate", json!({"request": request}))
                .await?;
            outcome(issued, common.cert_out.as_deref())?
        }
        CertCommand::Renew {
            id,
            validity_days,
            reuse_key,
        } => {
            let id = certificate_id(ctx, &id).await?;
            let renewed = ctx
                .call(
                    "renew_certificate",
                    json!({
                        "certificate_id": id,
                        "options": {"validity_days": validity_days, "reuse_key": reuse_key},
                    }),
                )
                .await?;
            outcome(renewed, None)?
        }
        CertCommand::Revoke {
            id,
            reason,
            comment,
        } => {
            let id = certificate_id(ctx, &id).await?;
            Rendered::record(
                ctx.call(
                    "revoke_certificate",
                    json!({"id": id, "reason": reason.name(), "comment": comment}),
                )
                .await?,
            )
        }
        CertCommand::Hold { id, comment } => {
            let id = certificate_id(ctx, &id).await?;
            Rendered::record(
                ctx.call(
                    "revoke_certificate",
                    json!({"id": id, "reason": "certificate_hold", "comment": comment}),
                )
                .await?,
            )
        }
        CertCommand::Release { id } => {
            let id = certificate_id(ctx, &id).await?;
            Rendered::record(
                ctx.call("release_certificate_hold", json!({"id": id}))
                    .await?,
            )
        }
        CertCommand::Show { id } => {
            let id = certificate_id(ctx, &id).await?;
            let certificate = ctx.call("get_certificate", json!({"id": id})).await?;
            let pem = certificate["certificate_pem"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            Rendered::record(certificate).with_pem(pem)
        }
        CertCommand::Chain { id } => {
            let id = certificate_id(ctx, &id).await?;
            let chain = ctx.call("certificate_chain", json!({"id": id})).await?;
            let pem: String = chain
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|item| item["certificate_pem"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            Rendered::table(
                chain,
                &[
                    "id",
                    "subject_dn",
                    "certificate_kind",
                    "status",
                    "not_after",
                ],
            )
            .with_pem(pem)
        }
        CertCommand::Search {
            cn,
            san,
            status,
            issuer,
            ca,
            expires_before,
            limit,
            cursor,
        } => {
            let issuer = optional_uuid(&issuer, "issuer")?;
            let search = json!({
                "common_name": cn,
                "san": san,
                "status": if status.is_empty() { Value::Null } else { json!(status) },
                "issuer_certificate_id": issuer,
                "is_ca": ca,
                "expires_before": expires_before,
            });
            let page = ctx
                .call(
                    "search_certificates",
                    json!({"search": search, "page": {"limit": limit, "cursor": cursor}}),
                )
                .await?;
            Rendered::page(page, CERTIFICATE_COLUMNS)
        }
        CertCommand::Expiring { days } => {
            let page = ctx
                .call("expiring_certificates", json!({"days": days}))
                .await?;
            Rendered::page(
                page,
                &[
                    "id",
                    "common_name",
                    "status",
                    "not_after",
                    "days_until_expiry",
                ],
            )
        }
        CertCommand::Export {
            id,
            format,
            password_file,
            out,
        } => {
            check_out(out.as_deref(), "out")?;
            let id = certificate_id(ctx, &id).await?;
            let (bytes, binary) = if format == ExportFormat::P12 {
                let Some(password_file) = &password_file else {
                    return Err(invalid(
                        "password_file",
                        "a PKCS #12 export needs --password-file",
                    ));
                };
                let password = read_secret_line(password_file, "password_file")?;
                let export = ctx
                    .call(
                        "export_pkcs12",
                        json!({"certificate_id": id, "password": *password}),
                    )
                    .await?;
                (decode(&export["data_base64"])?, true)
            } else {
                let name = match format {
                    ExportFormat::Pem => "pem",
                    ExportFormat::Der => "der",
                    ExportFormat::PemChain => "pem_chain",
                    _ => "pkcs7_der",
                };
                let export = ctx
                    .call(
                        "export_certificate",
                        json!({"certificate_id": id, "format": name}),
                    )
                    .await?;
                (
                    decode(&export["data_base64"])?,
                    matches!(format, ExportFormat::Der | ExportFormat::P7b),
                )
            };
            match &out {
                Some(path) if format == ExportFormat::P12 => write_private(path, &bytes, "out")?,
                Some(path) => write_public(path, &bytes, "out")?,
                None => {
                    if binary && std::io::stdout().is_terminal() {
                        return Err(invalid(
                            "out",
                            "this format is binary: give --out FILE or pipe the output",
                        ));
                    }
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(&bytes);
                    let _ = stdout.flush();
                    return Ok(Rendered::silent());
                }
            }
            Rendered::record(json!({
                "certificate_id": id,
                "file": out.as_ref().map(|p| p.display().to_string()),
                "bytes": bytes.len(),
            }))
        }
    })
}

fn decode(value: &Value) -> CliResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .map_err(|err| {
            CliError::Clm(clm::Error::Internal(format!(
                "an export is not base64: {err}"
            )))
        })
}

/// `clm csr create`: a key and a CSR, made here without any store.
pub async fn csr(command: CsrCommand) -> CliResult<Rendered> {
    match command {
        CsrCommand::Create {
            subject: names,
            sans: san_values,
            key_algorithm,
            key_out,
            csr_out,
        } => {
            check_out(Some(&key_out), "key_out")?;
            check_out(Some(&csr_out), "csr_out")?;
            let algorithm: KeyAlgorithm = key_algorithm.parse()?;
            let subject: DistinguishedName = serde_json::from_value(subject(&names))
                .map_err(|err| invalid("subject", err.to_string()))?;
            let names: Vec<clm::model::SubjectAlternativeName> =
                serde_json::from_value(sans(&san_values)?)
                    .map_err(|err| invalid("san", err.to_string()))?;
            let (csr_der, key_pem) = tokio::task::spawn_blocking(move || {
                let key = KeyPair::generate(algorithm)?;
                Ok::<_, clm::Error>((build_csr(&subject, &names, &key)?, key.to_pkcs8_pem()))
            })
            .await
            .map_err(|err| {
                CliError::Clm(clm::Error::Internal(format!("CSR task failed: {err}")))
            })??;
            let csr_pem = der_to_pem(PemLabel::CertificateRequest, &csr_der);
            write_private(&key_out, key_pem.expose().as_bytes(), "key_out")?;
            write_public(&csr_out, csr_pem.as_bytes(), "csr_out")?;
            Ok(Rendered::record(json!({
                "key_file": key_out.display().to_string(),
                "csr_file": csr_out.display().to_string(),
                "key_algorithm": algorithm.as_str(),
            }))
            .with_pem(csr_pem))
        }
    }
}

/// `clm key export`.
pub async fn key(ctx: &mut Context, command: KeyCommand) -> CliResult<Rendered> {
    match command {
        KeyCommand::Export {
            id,
            out,
            password_file,
        } => {
            check_out(out.as_deref(), "out")?;
            let id = certificate_id(ctx, &id).await?;
            match &out {
                Some(path) => {
                    export_key(ctx, &id, path, password_file.as_deref()).await?;
                    Ok(Rendered::record(json!({
                        "certificate_id": id,
                        "key_file": path.display().to_string(),
                    })))
                }
                None => {
                    let password = password_file
                        .as_deref()
                        .map(|path| read_secret_line(path, "password_file"))
                        .transpose()?;
                    let key = ctx
                        .call(
                            "export_private_key",
                            json!({
                                "certificate_id": id,
                                "options": {"password": password.as_deref().map(String::as_str)},
                            }),
                        )
                        .await?;
                    let pem = zeroize::Zeroizing::new(key.as_str().unwrap_or_default().to_string());
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(pem.as_bytes());
                    let _ = stdout.flush();
                    Ok(Rendered::silent())
                }
            }
        }
    }
}

/// `clm crl generate`.
pub async fn crl(ctx: &mut Context, command: CrlCommand) -> CliResult<Rendered> {
    let CrlCommand::Generate {
        issuer,
        delta,
        partition,
        next_update_hours,
        out,
    } = command;
    check_out(out.as_deref(), "out")?;
    let issuers: Vec<String> = match &issuer {
        Some(issuer) => vec![certificate_id(ctx, issuer).await?],
        None => {
            if out.is_some() {
                return Err(invalid("out", "--out needs one --issuer"));
            }
            let list = ctx.call("list_authorities", Value::Null).await?;
            list.as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter(|item| item["certificate"]["status"] != "revoked")
                        .filter_map(|item| item["certificate"]["id"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        }
    };
    let several = issuers.len() > 1;
    if several {
        catch_interrupts();
    }
    let mut progress = several.then(|| Progress::new("generating CRLs", issuers.len() as u64));
    let mut generated = Vec::new();
    let mut pem = String::new();
    for id in &issuers {
        if several && interrupted() {
            return Err(CliError::Interrupted(format!(
                "{} of {} CRLs generated; run again for the rest",
                generated.len(),
                issuers.len()
            )));
        }
        let crl = if delta || partition.is_some() {
            ctx.call(
                "generate_scoped_crl",
                json!({
                    "issuer_id": id,
                    "partition": partition,
                    "delta": delta,
                    "next_update_hours": next_update_hours,
                }),
            )
            .await?
        } else {
            ctx.call(
                "generate_crl",
                json!({"issuer_id": id, "next_update_hours": next_update_hours}),
            )
            .await?
        };
        // Generation returns the CRL's summary; the CRL itself is the
        // scope's latest, as a host serves it.
        let served = ctx
            .call(
                "latest_crl",
                json!({"issuer_id": id, "partition": partition, "delta": delta}),
            )
            .await?;
        if served["crl_number"] != crl["crl_number"] {
            return Err(CliError::Clm(clm::Error::conflict(format!(
                "CRL {} of {id} was superseded before it was read; run again",
                crl["crl_number"]
            ))));
        }
        if let Some(text) = served["pem"].as_str() {
            pem.push_str(text);
        }
        generated.push(crl);
        if let Some(progress) = &mut progress {
            progress.add(1);
        }
    }
    if let Some(progress) = &mut progress {
        progress.finish();
    }
    if let Some(path) = &out {
        write_public(path, pem.as_bytes(), "out")?;
    }
    Ok(Rendered::table(
        Value::Array(generated),
        &[
            "issuer_certificate_id",
            "kind",
            "crl_number",
            "entry_count",
            "next_update",
        ],
    )
    .with_pem(pem))
}
