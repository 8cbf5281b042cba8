//! `clm import FILE|DIR...`: every certificate file under the paths
//! (recursively), PEM, DER or bundles, with a key found beside a
//! certificate (NAME.key next to NAME.pem/.crt/.cer/.der). Large bundles go
//! in chunks so the progress bar moves and Ctrl-C stops between chunks;
//! running the same import again resumes it (what is stored already is
//! reported as already present).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::optional_uuid;
use crate::cli::ImportArgs;
use crate::context::{Context, catch_interrupts, interrupted, read_file};
use crate::error::{CliError, CliResult, invalid};
use crate::output::Rendered;
use crate::progress::Progress;

const CERTIFICATE_EXTENSIONS: &[&str] = &["pem", "crt", "cer", "der", "cert", "chain", "bundle"];
const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// One input file and what it holds.
struct Input {
    path: PathBuf,
    /// PEM certificate blocks, or one DER certificate.
    chunks: Vec<Value>,
    /// Certificates in it.
    count: usize,
    /// A key beside it.
    key: Option<Zeroizing<String>>,
}

/// Every file under `path`, sorted (a directory's files in name order).
fn walk(path: &Path, files: &mut Vec<PathBuf>) -> CliResult<()> {
    let meta = std::fs::metadata(path)
        .map_err(|err| invalid("paths", format!("cannot read {}: {err}", path.display())))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|err| invalid("paths", format!("cannot list {}: {err}", path.display())))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                walk(&entry, files)?;
            } else if entry
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| {
                    CERTIFICATE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
                })
            {
                files.push(entry);
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    Ok(())
}

/// The PEM certificate blocks of `text`.
fn pem_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        blocks.push(&rest[start..stop]);
        rest = &rest[stop..];
    }
    blocks
}

fn beside_key(path: &Path) -> Option<Zeroizing<String>> {
    let key = path.with_extension("key");
    (key != path)
        .then(|| std::fs::read_to_string(&key).ok().map(Zeroizing::new))
        .flatten()
}

fn read_input(path: PathBuf, chunk: usize) -> CliResult<Input> {
    let bytes = read_file(&path, "paths")?;
    let key = beside_key(&path);
    match std::str::from_utf8(&bytes) {
        Ok(text) if text.contains("-----BEGIN") => {
            let blocks = pem_blocks(text);
            let count = blocks.len();
            let chunks = if blocks.is_empty() {
                // No certificate block: the library says what it found.
                vec![json!({"pem": text})]
            } else {
                blocks
                    .chunks(chunk.max(1))
                    .map(|part| json!({"pem": part.join("\n")}))
                    .collect()
            };
            Ok(Input {
                path,
                chunks,
                count: count.max(1),
                key,
            })
        }
        _ => Ok(Input {
            path,
            chunks: vec![json!({
                "der_base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
            })],
            count: 1,
            key,
        }),
    }
}

/// `clm import`.
pub async fn import(ctx: &mut Context, args: ImportArgs) -> CliResult<Rendered> {
    let organization_id = optional_uuid(&args.organization_id, "organization_id")?;
    let owner = optional_uuid(&args.owner, "owner")?;
    // Every path is checked before anything is imported.
    let mut files = Vec::new();
    for path in &args.paths {
        walk(path, &mut files)?;
    }
    let mut inputs = Vec::with_capacity(files.len());
    for file in files {
        inputs.push(read_input(file, args.chunk)?);
    }
    let total: usize = inputs.iter().map(|input| input.count).sum();
    ctx.actor().await?;
    catch_interrupts();
    let mut progress = Progress::new("importing", total as u64);
    let mut rows = Vec::new();
    let (mut imported, mut present, mut flagged, mut failed) = (0usize, 0usize, 0usize, 0usize);
    let mut first_error: Option<clm::Error> = None;
    for input in &inputs {
        let mut row = json!({
            "file": input.path.display().to_string(),
            "imported": 0, "already_present": 0, "flagged": 0, "error": null,
        });
        let single = input.count == 1 && input.chunks.len() == 1;
        for chunk in &input.chunks {
            if interrupted() {
                progress.finish();
                return Err(CliError::Interrupted(format!(
                    "{imported} imported, {present} already present before Ctrl-C; the same command resumes (stored certificates show as already present)"
                )));
            }
            let mut request = chunk.clone();
            request["organization_id"] = organization_id.clone();
            request["owner_user_id"] = owner.clone();
            if single && let Some(key) = &input.key {
                request["private_key_pem"] = Value::String(key.to_string());
            }
            let in_chunk = chunk["pem"]
                .as_str()
                .map_or(1, |pem| pem_blocks(pem).len().max(1));
            match ctx
                .call("import_certificates", json!({"request": request}))
                .await
            {
                Ok(report) => {
                    let count = |name: &str| report[name].as_array().map_or(0, Vec::len);
                    imported += count("imported");
                    present += count("already_present");
                    flagged += count("flagged");
                    for name in ["imported", "already_present", "flagged"] {
                        row[name] = json!(row[name].as_u64().unwrap_or(0) + count(name) as u64);
                    }
                }
                Err(CliError::Clm(err)) => {
                    failed += in_chunk;
                    row["error"] = Value::String(format!("{err} [{}]", err.code()));
                    if first_error.is_none() {
                        first_error = Some(err);
                    }
                }
                Err(other) => return Err(other),
            }
            progress.add(in_chunk as u64);
        }
        rows.push(row);
    }
    progress.finish();
    let summary = json!({
        "files": rows,
        "imported": imported,
        "already_present": present,
        "flagged": flagged,
        "failed": failed,
    });
    let note = format!(
        "{imported} imported, {present} already present, {flagged} flagged, {failed} failed"
    );
    if let Some(err) = first_error {
        // The summary still shows what went in before the failure is reported.
        Rendered::table(
            summary["files"].clone(),
            &["file", "imported", "already_present", "flagged", "error"],
        )
        .with_note(note)
        .print(ctx.format, ctx.color)?;
        return Err(CliError::Clm(err));
    }
    let mut rendered = Rendered::table(
        summary,
        &["file", "imported", "already_present", "flagged", "error"],
    );
    rendered.rows_at = Some("files");
    Ok(rendered.with_note(note))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_split_a_bundle_and_skip_other_blocks() {
        let text = format!(
            "junk\n{BEGIN}\nAAA\n{END}\n-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n{BEGIN}\nBBB\n{END}\n"
        );
        let blocks = pem_blocks(&text);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].contains("BBB"));
        assert!(pem_blocks("no pem").is_empty());
    }
}
