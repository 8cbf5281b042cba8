//! `policy`, `workflow` and `approvals`.

use serde_json::{Map, Value, json};

use super::{certificate_id, document, policy_id, sans, uuid};
use crate::cli::{ApprovalsCommand, PolicyCommand, WorkflowCommand};
use crate::context::Context;
use crate::error::{CliError, CliResult, invalid};
use crate::output::Rendered;

/// A file's documents: one object, or a list of them.
fn documents(value: Value, field: &str) -> CliResult<Vec<Map<String, Value>>> {
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => return Err(invalid(field, "must hold an object or a list of objects")),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Value::Object(map) => Ok(map),
            _ => Err(invalid(format!("{field}[{index}]"), "is not an object")),
        })
        .collect()
}

/// `policy_rules` as the library stores them: defaults filled in, so a
/// file that leaves a rule at its default shows no difference.
fn normalized_rules(rules: &Value, field: &str) -> CliResult<Value> {
    let parsed: clm::model::PolicyRules =
        serde_path_to_error::deserialize(rules.clone()).map_err(|err| {
            invalid(
                format!("{field}.{}", err.path()),
                err.into_inner().to_string(),
            )
        })?;
    serde_json::to_value(parsed).map_err(|err| invalid(field, err.to_string()))
}

/// Field-by-field changes between two JSON values, as `path: old -> new`.
fn diff(prefix: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                diff(
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if old != new => out.push(format!("{prefix}: {old} -> {new}")),
        _ => {}
    }
}

const POLICY_KEYS: &[&str] = &[
    "policy_code",
    "name",
    "description",
    "rules",
    "status",
    "workflow_code",
    "organization_id",
];

/// `clm policy ...`.
pub async fn policy(ctx: &mut Context, command: PolicyCommand) -> CliResult<Rendered> {
    Ok(match command {
        PolicyCommand::Apply { file, dry_run } => {
            let field = file.display().to_string();
            let items = documents(document(&file)?, &field)?;
            // Every document is checked before any is applied.
            let mut plans = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let at = format!("{field}[{index}]");
                if let Some(unknown) = item.keys().find(|key| !POLICY_KEYS.contains(&key.as_str()))
                {
                    return Err(invalid(
                        format!("{at}.{unknown}"),
                        format!("is not a policy field (known: {})", POLICY_KEYS.join(", ")),
                    ));
                }
                let code = item
                    .get("policy_code")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{at}.policy_code"), "is missing"))?
                    .to_string();
                let rules = normalized_rules(
                    item.get("rules")
                        .ok_or_else(|| invalid(format!("{at}.rules"), "is missing"))?,
                    &format!("{at}.rules"),
                )?;
                plans.push((code, item.clone(), rules));
            }
            let mut rows = Vec::new();
            for (code, item, rules) in plans {
                let workflow_id = match item.get("workflow_code").and_then(Value::as_str) {
                    Some(workflow) => Some(
                        ctx.call("get_workflow_by_code", json!({"code": workflow}))
                            .await?["id"]
                            .clone(),
                    ),
                    None => None,
                };
                let existing = match ctx.call("get_policy_by_code", json!({"code": code})).await {
                    Ok(policy) => Some(policy),
                    Err(CliError::Clm(clm::Error::NotFound { .. })) => None,
                    Err(err) => return Err(err),
                };
                match existing {
                    None => {
                        if !dry_run {
                            ctx.call(
                                "create_policy",
                                json!({"new": {
                                    "policy_code": code,
                                    "name": item.get("name").cloned().unwrap_or_else(|| json!(code)),
                                    "description": item.get("description"),
                                    "rules": rules,
                                    "status": item.get("status").cloned().unwrap_or_else(|| json!("active")),
                                    "workflow_id": workflow_id,
                                    "organization_id": item.get("organization_id"),
                                }}),
                            )
                            .await?;
                        }
                        rows.push(json!({"policy_code": code, "action": "create", "changes": ["new policy"]}));
                    }
                    Some(policy) => {
                        let mut changes = Vec::new();
                        let mut update = Map::new();
                        for (name, stored) in [
                            ("name", "name"),
                            ("description", "description"),
                            ("status", "status"),
                        ] {
                            if let Some(wanted) = item.get(name)
                                && *wanted != policy[stored]
                            {
                                changes.push(format!("{name}: {} -> {wanted}", policy[stored]));
                                update.insert(name.into(), wanted.clone());
                            }
                        }
                        let mut rule_changes = Vec::new();
                        diff("rules", &policy["policy_rules"], &rules, &mut rule_changes);
                        if !rule_changes.is_empty() {
                            update.insert("rules".into(), rules.clone());
                            changes.extend(rule_changes);
                        }
                        if let Some(workflow_id) = &workflow_id
                            && *workflow_id != policy["workflow_id"]
                        {
                            changes.push(format!(
                                "workflow_id: {} -> {workflow_id}",
                                policy["workflow_id"]
                            ));
                            update.insert("workflow_id".into(), workflow_id.clone());
                        }
                        let action = if changes.is_empty() {
                            "unchanged"
                        } else {
                            "update"
                        };
                        if !dry_run && !changes.is_empty() {
                            ctx.call(
                                "update_policy",
                                json!({"id": policy["id"], "update": Value::Object(update)}),
                            )
                            .await?;
                        }
                        rows.push(
                            json!({"policy_code": code, "action": action, "changes": changes}),
                        );
                    }
                }
            }
            let rendered =
                Rendered::table(Value::Array(rows), &["policy_code", "action", "changes"]);
            if dry_run {
                rendered.with_note("dry run: nothing was changed")
            } else {
                rendered
            }
        }
        PolicyCommand::Check {
            policy,
            issuer,
            subject,
            sans: san_values,
            validity_days,
            kind,
            key_algorithm,
        } => {
            let policy = policy_id(ctx, &policy).await?;
            let issuer = match issuer {
                Some(issuer) => certificate_id(ctx, &issuer).await?,
                None => {
                    let record = ctx.call("get_policy", json!({"id": policy})).await?;
                    match record["policy_rules"]["issuer_ids"]
                        .as_array()
                        .map(Vec::as_slice)
                    {
                        Some([only]) => only.as_str().unwrap_or_default().to_string(),
                        _ => {
                            return Err(invalid(
                                "issuer",
                                "the policy does not name exactly one issuer: give --issuer",
                            ));
                        }
                    }
                }
            };
            let report = ctx
                .call(
                    "dry_run_issuance",
                    json!({"request": {
                        "issuer_id": issuer,
                        "policy_id": policy,
                        "validity_days": validity_days,
                        "subject": {"common_name": subject},
                        "sans": sans(&san_values)?,
                        "kind": kind.name(),
                        "key_algorithm": key_algorithm,
                    }}),
                )
                .await?;
            let allowed = report["allowed"] == Value::Bool(true);
            let mut rendered = Rendered::table(report.clone(), &["rule", "passed", "detail"]);
            rendered.rows_at = Some("rules");
            let verdict = if allowed { "allowed" } else { "refused" };
            let rendered = rendered.with_note(format!(
                "{verdict}{}",
                if report["requires_approval"] == Value::Bool(true) {
                    " (needs approval)"
                } else {
                    ""
                }
            ));
            if !allowed {
                rendered.print(ctx.format, ctx.color)?;
                let violations = report["rules"]
                    .as_array()
                    .map(|rules| {
                        rules
                            .iter()
                            .filter(|rule| rule["passed"] == Value::Bool(false))
                            .map(|rule| {
                                clm::error::Violation::new(
                                    rule["rule"].as_str().unwrap_or_default(),
                                    rule["detail"].as_str().unwrap_or_default(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                return Err(CliError::Clm(clm::Error::PolicyViolation { violations }));
            }
            rendered
        }
        PolicyCommand::List => Rendered::page(
            ctx.call("list_policies", Value::Null).await?,
            &[
                "id",
                "policy_code",
                "name",
                "status",
                "version",
                "organization_id",
            ],
        ),
        PolicyCommand::Show { policy } => {
            let id = policy_id(ctx, &policy).await?;
            Rendered::record(ctx.call("get_policy", json!({"id": id})).await?)
        }
    })
}

const WORKFLOW_KEYS: &[&str] = &[
    "workflow_code",
    "name",
    "description",
    "definition",
    "is_default",
    "organization_id",
];

/// `clm workflow ...`.
pub async fn workflow(ctx: &mut Context, command: WorkflowCommand) -> CliResult<Rendered> {
    Ok(match command {
        WorkflowCommand::Apply { file, dry_run } => {
            let field = file.display().to_string();
            let items = documents(document(&file)?, &field)?;
            for (index, item) in items.iter().enumerate() {
                let at = format!("{field}[{index}]");
                if let Some(unknown) = item
                    .keys()
                    .find(|key| !WORKFLOW_KEYS.contains(&key.as_str()))
                {
                    return Err(invalid(
                        format!("{at}.{unknown}"),
                        format!(
                            "is not a workflow field (known: {})",
                            WORKFLOW_KEYS.join(", ")
                        ),
                    ));
                }
                for required in ["workflow_code", "name", "definition"] {
                    if !item.contains_key(required) {
                        return Err(invalid(format!("{at}.{required}"), "is missing"));
                    }
                }
            }
            let mut rows = Vec::new();
            for item in items {
                let code = item["workflow_code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let existing = match ctx
                    .call("get_workflow_by_code", json!({"code": code}))
                    .await
                {
                    Ok(workflow) => Some(workflow),
                    Err(CliError::Clm(clm::Error::NotFound { .. })) => None,
                    Err(err) => return Err(err),
                };
                match existing {
                    None => {
                        if !dry_run {
                            ctx.call("create_workflow", json!({"new": Value::Object(item)}))
                                .await?;
                        }
                        rows.push(json!({"workflow_code": code, "action": "create", "changes": ["new workflow"]}));
                    }
                    Some(workflow) => {
                        let mut changes = Vec::new();
                        diff(
                            "definition",
                            &workflow["workflow_definition"],
                            &item["definition"],
                            &mut changes,
                        );
                        if !changes.is_empty() {
                            return Err(CliError::Clm(clm::Error::conflict(format!(
                                "workflow {code} exists with another definition ({}); workflows are not changed in place: give the new one another workflow_code",
                                changes.join("; ")
                            ))));
                        }
                        rows.push(
                            json!({"workflow_code": code, "action": "unchanged", "changes": []}),
                        );
                    }
                }
            }
            let rendered =
                Rendered::table(Value::Array(rows), &["workflow_code", "action", "changes"]);
            if dry_run {
                rendered.with_note("dry run: nothing was changed")
            } else {
                rendered
            }
        }
        WorkflowCommand::List => Rendered::page(
            ctx.call("list_workflows", Value::Null).await?,
            &[
                "id",
                "workflow_code",
                "name",
                "status",
                "is_default",
                "version",
            ],
        ),
        WorkflowCommand::Show { workflow } => {
            let record = if uuid::Uuid::parse_str(&workflow).is_ok() {
                ctx.call("get_workflow", json!({"id": workflow})).await?
            } else {
                ctx.call("get_workflow_by_code", json!({"code": workflow}))
                    .await?
            };
            Rendered::record(record)
        }
    })
}

/// `clm approvals ...`.
pub async fn approvals(ctx: &mut Context, command: ApprovalsCommand) -> CliResult<Rendered> {
    Ok(match command {
        ApprovalsCommand::List => Rendered::table(
            ctx.call("pending_approvals", Value::Null).await?,
            &[
                "workflow_instance_id",
                "workflow_code",
                "step_name",
                "subject_type",
                "subject_id",
                "requested_by_user_id",
                "created_at",
            ],
        ),
        ApprovalsCommand::Approve { id, comment } => {
            let id = uuid(&id, "id")?;
            Rendered::record(
                ctx.call(
                    "decide_approval",
                    json!({"instance_id": id, "approve": true, "comment": comment}),
                )
                .await?,
            )
        }
        ApprovalsCommand::Reject { id, comment } => {
            let id = uuid(&id, "id")?;
            if comment.trim().is_empty() {
                return Err(invalid("comment", "a rejection needs a reason"));
            }
            Rendered::record(
                ctx.call(
                    "decide_approval",
                    json!({"instance_id": id, "approve": false, "comment": comment}),
                )
                .await?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lists_changed_leaves_only() {
        let mut out = Vec::new();
        diff(
            "rules",
            &json!({"a": 1, "b": {"c": [1]}, "d": true}),
            &json!({"a": 1, "b": {"c": [2]}, "e": 3, "d": true}),
            &mut out,
        );
        assert_eq!(out, vec!["rules.b.c: [1] -> [2]", "rules.e: null -> 3"]);
    }

    #[test]
    fn rules_are_checked_with_the_field_named() {
        let err = normalized_rules(&json!({"max_validity_days": "long"}), "f.rules").unwrap_err();
        let CliError::Clm(err) = err else { panic!() };
        assert!(
            err.to_string().contains("f.rules.max_validity_days"),
            "{err}"
        );
        let rules = normalized_rules(&json!({"max_validity_days": 90}), "r").unwrap();
        assert_eq!(rules["max_validity_days"], 90);
    }
}
