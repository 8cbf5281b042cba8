//! The commands, each a thin layer over one or a few operations, and the
//! argument conversions they share.

pub mod governance;
pub mod identity;
pub mod import;
pub mod meta;
pub mod ocsp;
pub mod operations;
pub mod pki;

use serde_json::{Value, json};

use crate::cli::{Command, SubjectArgs};
use crate::context::Context;
use crate::error::{CliError, CliResult, invalid};
use crate::output::Rendered;

/// Runs one command; None when it printed what it had to already.
pub async fn run(ctx: &mut Context, command: Command) -> CliResult<Option<Rendered>> {
    let rendered = match command {
        Command::Init(args) => identity::init(ctx, args).await?,
        Command::Login(args) => identity::login(ctx, args).await?,
        Command::Logout => identity::logout(ctx).await?,
        Command::Whoami => identity::whoami(ctx).await?,
        Command::Config(command) => identity::config(ctx, command)?,
        Command::User(command) => identity::user(ctx, command).await?,
        Command::Role(command) => identity::role(ctx, command).await?,
        Command::Org(command) => identity::org(ctx, command).await?,
        Command::Apikey(command) => identity::apikey(ctx, command).await?,
        Command::Ca(command) => pki::ca(ctx, command).await?,
        Command::Cert(command) => pki::cert(ctx, command).await?,
        Command::Csr(command) => pki::csr(command).await?,
        Command::Key(command) => pki::key(ctx, command).await?,
        Command::Crl(command) => pki::crl(ctx, command).await?,
        Command::Import(args) => import::import(ctx, args).await?,
        Command::Ocsp(command) => {
            ocsp::run(ctx, command).await?;
            return Ok(None);
        }
        Command::Policy(command) => governance::policy(ctx, command).await?,
        Command::Workflow(command) => governance::workflow(ctx, command).await?,
        Command::Approvals(command) => governance::approvals(ctx, command).await?,
        Command::Audit(command) => match operations::audit(ctx, command).await? {
            Some(rendered) => rendered,
            None => return Ok(None),
        },
        Command::Keys(command) => operations::keys(ctx, command).await?,
        Command::Lifecycle(command) => operations::lifecycle(ctx, command).await?,
        Command::Db(command) => operations::db(ctx, command).await?,
        Command::Completions { .. } | Command::Man => return Ok(None),
    };
    Ok(Some(rendered))
}

/// Whether a command has a PEM form (`--output pem`), known before it runs
/// so that a command without one changes nothing.
pub fn has_pem_form(command: &Command) -> bool {
    use crate::cli::{CaCommand, CertCommand, RolloverCommand};
    match command {
        Command::Ca(CaCommand::Rollover(rollover)) => {
            matches!(rollover, RolloverCommand::Status { .. })
        }
        Command::Ca(_) | Command::Csr(_) | Command::Crl(_) => true,
        Command::Cert(command) => matches!(
            command,
            CertCommand::Issue { .. }
                | CertCommand::SignCsr { .. }
                | CertCommand::Renew { .. }
                | CertCommand::Show { .. }
                | CertCommand::Chain { .. }
                | CertCommand::Export { .. }
        ),
        Command::Key(_) => true,
        _ => false,
    }
}

/// A UUID argument, or InvalidInput naming `field`.
pub fn uuid(text: &str, field: &str) -> CliResult<String> {
    uuid::Uuid::parse_str(text.trim())
        .map(|id| id.to_string())
        .map_err(|_| invalid(field, format!("{text:?} is not an id (a UUID)")))
}

/// An optional UUID argument.
pub fn optional_uuid(text: &Option<String>, field: &str) -> CliResult<Value> {
    Ok(match text {
        Some(text) => Value::String(uuid(text, field)?),
        None => Value::Null,
    })
}

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text.trim()).is_ok()
}

/// A certificate's id from its id or its SHA-256 fingerprint.
pub async fn certificate_id(ctx: &mut Context, text: &str) -> CliResult<String> {
    if is_uuid(text) {
        return uuid(text, "id");
    }
    let certificate = ctx
        .call(
            "get_certificate_by_certificate_id",
            json!({"certificate_id": text.trim()}),
        )
        .await?;
    string_at(&certificate, "id")
}

/// A policy's id from its id or its code.
pub async fn policy_id(ctx: &mut Context, text: &str) -> CliResult<String> {
    if is_uuid(text) {
        return uuid(text, "policy");
    }
    let policy = ctx
        .call("get_policy_by_code", json!({"code": text.trim()}))
        .await?;
    string_at(&policy, "id")
}

/// A user's id from their id or username.
pub async fn user_id(ctx: &mut Context, text: &str) -> CliResult<String> {
    if is_uuid(text) {
        return uuid(text, "user");
    }
    let user = ctx
        .call("get_user_by_username", json!({"username": text.trim()}))
        .await?;
    string_at(&user, "id")
}

/// A role's id from its id or code.
pub async fn role_id(ctx: &mut Context, text: &str) -> CliResult<String> {
    if is_uuid(text) {
        return uuid(text, "role");
    }
    let role = ctx
        .call("get_role_by_code", json!({"code": text.trim()}))
        .await?;
    string_at(&role, "id")
}

/// A string field of a record the library returned.
pub fn string_at(value: &Value, path: &str) -> CliResult<String> {
    crate::output::at(value, path)
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::Clm(clm::Error::Internal(format!("the record has no {path}"))))
}

/// The subject flags as a distinguished name.
pub fn subject(args: &SubjectArgs) -> Value {
    json!({
        "common_name": args.cn,
        "organization": args.org,
        "organizational_unit": args.ou,
        "country": args.country,
        "state": args.state,
        "locality": args.locality,
    })
}

/// `--san` (and name constraint) values: `DNS:name`, `IP:addr` (or a CIDR
/// range), `EMAIL:addr`, `URI:uri`, or a bare address or range (IP), URI,
/// mailbox or name (DNS).
pub fn sans(values: &[String]) -> CliResult<Value> {
    let mut names = Vec::new();
    for value in values {
        let value = value.trim();
        let (kind, name) = match value.split_once(':') {
            Some((kind, rest))
                if ["dns", "ip", "email", "uri"].contains(&kind.to_ascii_lowercase().as_str())
                    && !rest.is_empty() =>
            {
                (kind.to_ascii_uppercase(), rest.to_string())
            }
            _ if value
                .split('/')
                .next()
                .is_some_and(|address| address.parse::<std::net::IpAddr>().is_ok()) =>
            {
                ("IP".into(), value.to_string())
            }
            _ if value.contains("://") => ("URI".into(), value.to_string()),
            _ if value.contains('@') => ("EMAIL".into(), value.to_string()),
            _ if !value.is_empty() => ("DNS".into(), value.to_string()),
            _ => return Err(invalid("san", "is empty")),
        };
        names.push(json!({"type": kind, "value": name}));
    }
    Ok(Value::Array(names))
}

/// A JSON document given on the command line (`--permissions`, `--scopes`).
pub fn json_argument(text: &str, field: &str) -> CliResult<Value> {
    serde_json::from_str(text).map_err(|err| invalid(field, format!("is not JSON: {err}")))
}

/// Reads a YAML or JSON file (YAML is a superset: one parser reads both).
pub fn document(path: &std::path::Path) -> CliResult<Value> {
    let field = path.display().to_string();
    let text = crate::context::read_text(path, &field)?;
    serde_norway::from_str(&text)
        .map_err(|err| invalid(&field, format!("is not valid YAML or JSON: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_read_tags_and_guess_bare_values() {
        let names = sans(&[
            "DNS:a.example".into(),
            "ip:10.0.0.1".into(),
            "127.0.0.1".into(),
            "b.example".into(),
            "ops@example.com".into(),
            "https://example.com/x".into(),
        ])
        .unwrap();
        let text = crate::output::cell(&names);
        assert_eq!(
            text,
            "DNS:a.example, IP:10.0.0.1, IP:127.0.0.1, DNS:b.example, EMAIL:ops@example.com, URI:https://example.com/x"
        );
        assert!(sans(&[" ".into()]).is_err());
        assert!(uuid("nope", "id").is_err());
    }
}
