//! Pure policy evaluation: a request's facts against a policy's rules, before
//! anything is signed. No I/O. Every rule yields one [`RuleOutcome`] naming
//! all its offenders, so a refusal lists every violated rule at once.

use serde::Serialize;

use crate::crypto::DistinguishedName;
use crate::model::{
    CertificateId, CertificateKind, OrganizationId, Policy, PolicyStatus, SubjectAlternativeName,
    validate_dns_name,
};
use crate::{Error, Result};

/// One rule's verdict. `rule` is the policy_rules field name (or `status`,
/// `organization` for the policy row itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleOutcome {
    pub rule: String,
    pub passed: bool,
    pub detail: String,
}

/// The facts of a request that policies judge.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    pub organization_id: Option<OrganizationId>,
    pub subject: &'a DistinguishedName,
    pub sans: &'a [SubjectAlternativeName],
    pub kind: CertificateKind,
    pub validity_days: u32,
    /// "RSA", "ECDSA", "Ed25519" (or whatever a CSR carried).
    pub key_family: &'a str,
    pub key_bits: u32,
    /// The signing CA (`certificates.id`) and its organization; judged by
    /// the `issuer_ids` rule (None skips it: no CA chosen yet).
    pub issuer: Option<(CertificateId, Option<OrganizationId>)>,
}

/// Whether `policy` lets CA `ca_id` (of `ca_organization`) issue for
/// `organization`: a CA it lists; or, when it lists none, a CA of the
/// certificate's own organization (shared CAs for shared certificates). A
/// shared CA serves an organization only through a policy that lists it.
pub fn policy_binds(
    policy: &Policy,
    ca_id: CertificateId,
    ca_organization: Option<OrganizationId>,
    organization: Option<OrganizationId>,
) -> bool {
    let listed = &policy.policy_rules.0.issuer_ids;
    if !listed.is_empty() {
        return listed.contains(&ca_id);
    }
    ca_organization == organization
}

fn outcome(rule: &str, failures: Vec<String>, pass_detail: String) -> RuleOutcome {
    RuleOutcome {
        rule: rule.to_string(),
        passed: failures.is_empty(),
        detail: if failures.is_empty() {
            pass_detail
        } else {
            failures.join(", ")
        },
    }
}

/// Every DNS name of a request: the common name when it is a DNS name
/// (contains a dot and is syntactically one), and every DNS SAN.
pub fn dns_names(input: &PolicyInput<'_>) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(cn) = input
        .subject
        .common_name
        .as_deref()
        .filter(|cn| !cn.is_empty())
        && cn.contains('.')
        && validate_dns_name(cn).is_ok()
    {
        names.push(normalize(cn));
    }
    for san in input.sans {
        if let SubjectAlternativeName::Dns(name) = san {
            let name = normalize(name);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` (no wildcard) is within `domain` under the subdomain rule.
fn within(name: &str, domain: &str, allow_subdomains: bool) -> bool {
    name == domain
        || (allow_subdomains
            && name
                .strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.')))
}

/// Judges `input` against `policy`, every rule, in a stable order.
pub fn evaluate(policy: &Policy, input: &PolicyInput<'_>) -> Vec<RuleOutcome> {
    let rules = &policy.policy_rules.0;
    let mut outcomes = Vec::with_capacity(10);

    outcomes.push(outcome(
        "status",
        if policy.status == PolicyStatus::Active {
            vec![]
        } else {
            vec![format!(
                "policy {} is {}, not active",
                policy.policy_code, policy.status
            )]
        },
        format!("policy {} is active", policy.policy_code),
    ));

    let org_ok =
        policy.organization_id.is_none() || policy.organization_id == input.organization_id;
    outcomes.push(outcome(
        "organization",
        if org_ok {
            vec![]
        } else {
            vec![format!(
                "policy {} belongs to another organization than the request",
                policy.policy_code
            )]
        },
        "policy applies to the request's organization".into(),
    ));

    if let Some((ca_id, ca_organization)) = input.issuer {
        outcomes.push(outcome(
            "issuer_ids",
            if policy_binds(policy, ca_id, ca_organization, input.organization_id) {
                vec![]
            } else {
                vec![format!(
                    "policy {} does not bind CA {ca_id} for this organization",
                    policy.policy_code
                )]
            },
            "the policy binds the signing CA".into(),
        ));
    }

    outcomes.push(outcome(
        "max_validity_days",
        if input.validity_days > rules.max_validity_days {
            vec![format!(
                "{} > {}",
                input.validity_days, rules.max_validity_days
            )]
        } else {
            vec![]
        },
        format!("{} <= {}", input.validity_days, rules.max_validity_days),
    ));

    outcomes.push(outcome(
        "allowed_algorithms",
        if rules
            .allowed_algorithms
            .iter()
            .any(|a| a == input.key_family)
        {
            vec![]
        } else {
            vec![format!(
                "{} not in [{}]",
                input.key_family,
                rules.allowed_algorithms.join(", ")
            )]
        },
        format!("{} allowed", input.key_family),
    ));

    let is_rsa = input.key_family == "RSA";
    outcomes.push(outcome(
        "min_key_size",
        if is_rsa && input.key_bits < rules.min_key_size {
            vec![format!("RSA {} < {}", input.key_bits, rules.min_key_size)]
        } else {
            vec![]
        },
        if is_rsa {
            format!("RSA {} >= {}", input.key_bits, rules.min_key_size)
        } else {
            "not an RSA key".into()
        },
    ));

    let is_ec = input.key_family == "ECDSA";
    outcomes.push(outcome(
        "min_ec_key_size",
        if is_ec && input.key_bits < rules.min_ec_key_size {
            vec![format!(
                "ECDSA {} < {}",
                input.key_bits, rules.min_ec_key_size
            )]
        } else {
            vec![]
        },
        if is_ec {
            format!("ECDSA {} >= {}", input.key_bits, rules.min_ec_key_size)
        } else {
            "not an ECDSA key".into()
        },
    ));

    let kind_failures = if rules.allowed_kinds.is_empty() {
        // Empty means any end-entity kind; CAs are never issued under a policy.
        if matches!(
            input.kind,
            CertificateKind::RootCa | CertificateKind::IntermediateCa | CertificateKind::Imported
        ) {
            vec![format!("{} is not an end-entity kind", input.kind)]
        } else {
            vec![]
        }
    } else if rules.allowed_kinds.contains(&input.kind) {
        vec![]
    } else {
        vec![format!(
            "{} not in [{}]",
            input.kind,
            rules
                .allowed_kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )]
    };
    outcomes.push(outcome(
        "allowed_kinds",
        kind_failures,
        format!("{} allowed", input.kind),
    ));

    let san_failures: Vec<String> = if rules.allowed_san_types.is_empty() {
        vec![]
    } else {
        input
            .sans
            .iter()
            .filter(|san| !rules.allowed_san_types.iter().any(|t| t == san.type_name()))
            .map(|san| {
                format!(
                    "{}:{} (type not in [{}])",
                    san.type_name(),
                    san.value(),
                    rules.allowed_san_types.join(", ")
                )
            })
            .collect()
    };
    outcomes.push(outcome(
        "allowed_san_types",
        san_failures,
        "every SAN type allowed".into(),
    ));

    let names = dns_names(input);
    let wildcards: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with("*."))
        .map(|n| format!("{n} is a wildcard"))
        .collect();
    outcomes.push(outcome(
        "allow_wildcards",
        if rules.allow_wildcards {
            vec![]
        } else {
            wildcards
        },
        if rules.allow_wildcards {
            "wildcards allowed".into()
        } else {
            "no wildcard names".into()
        },
    ));

    let domain_failures: Vec<String> = if rules.allowed_domains.is_empty() {
        vec![]
    } else {
        let domains: Vec<String> = rules.allowed_domains.iter().map(|d| normalize(d)).collect();
        names
            .iter()
            .filter(|name| {
                let allowed = match name.strip_prefix("*.") {
                    // `*.base` names hosts one label below base: a subdomain match.
                    Some(base) => {
                        let host = format!("x.{base}");
                        rules.allow_subdomains && domains.iter().any(|d| within(&host, d, true))
                    }
                    None => domains
                        .iter()
                        .any(|d| within(name, d, rules.allow_subdomains)),
                };
                !allowed
            })
            .map(|name| {
                format!(
                    "{name} not within [{}]{}",
                    rules.allowed_domains.join(", "),
                    if rules.allow_subdomains {
                        ""
                    } else {
                        " (subdomains not allowed)"
                    }
                )
            })
            .collect()
    };
    outcomes.push(outcome(
        "allowed_domains",
        domain_failures,
        if rules.allowed_domains.is_empty() {
            "any domain".into()
        } else {
            format!("{} DNS name(s) within the allowed domains", names.len())
        },
    ));

    outcomes
}

/// `rule: detail` for every failed outcome.
pub fn violations(outcomes: &[RuleOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| format!("{}: {}", o.rule, o.detail))
        .collect()
}

/// Ok when every rule passed, else `PolicyViolation` listing each failure.
pub fn enforce(policy: &Policy, input: &PolicyInput<'_>) -> Result<()> {
    let violations = violations(&evaluate(policy, input));
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::PolicyViolation { violations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PolicyId, PolicyRules};

    fn policy(rules: PolicyRules) -> Policy {
        let at = crate::store::now();
        Policy {
            id: PolicyId::new(),
            policy_code: "P".into(),
            name: "P".into(),
            description: None,
            policy_rules: sqlx::types::Json(rules),
            status: PolicyStatus::Active,
            version: 1,
            organization_id: None,
            workflow_id: None,
            created_by_user_id: None,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        }
    }

    fn input<'a>(
        subject: &'a DistinguishedName,
        sans: &'a [SubjectAlternativeName],
    ) -> PolicyInput<'a> {
        PolicyInput {
            organization_id: None,
            subject,
            sans,
            kind: CertificateKind::TlsServer,
            validity_days: 90,
            key_family: "ECDSA",
            key_bits: 256,
            issuer: None,
        }
    }

    #[test]
    fn every_dns_name_is_checked_not_the_first() {
        let rules = PolicyRules {
            allowed_domains: vec!["example.com".into()],
            allow_subdomains: true,
            ..PolicyRules::default()
        };
        let subject = DistinguishedName::common_name("www.example.com");
        let sans = [
            SubjectAlternativeName::Dns("www.example.com".into()),
            SubjectAlternativeName::Dns("evil.org".into()),
            SubjectAlternativeName::Dns("notexample.com".into()),
        ];
        let outcomes = evaluate(&policy(rules), &input(&subject, &sans));
        let v = violations(&outcomes);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("allowed_domains:"));
        assert!(
            v[0].contains("evil.org") && v[0].contains("notexample.com"),
            "{v:?}"
        );
    }

    #[test]
    fn wildcards_and_subdomains() {
        let subject = DistinguishedName::default();
        let sans = [SubjectAlternativeName::Dns("*.example.com".into())];
        let strict = PolicyRules {
            allowed_domains: vec!["example.com".into()],
            ..PolicyRules::default()
        };
        let v = violations(&evaluate(&policy(strict.clone()), &input(&subject, &sans)));
        assert!(v.iter().any(|v| v.starts_with("allow_wildcards:")), "{v:?}");
        assert!(v.iter().any(|v| v.starts_with("allowed_domains:")), "{v:?}");
        let loose = PolicyRules {
            allow_subdomains: true,
            allow_wildcards: true,
            ..strict
        };
        assert!(violations(&evaluate(&policy(loose), &input(&subject, &sans))).is_empty());
    }

    #[test]
    fn key_and_validity_rules_name_the_numbers() {
        let subject = DistinguishedName::common_name("a.example.com");
        let mut request = input(&subject, &[]);
        request.validity_days = 400;
        request.key_family = "RSA";
        request.key_bits = 1024;
        let rules = PolicyRules {
            allowed_algorithms: vec!["ECDSA".into()],
            ..PolicyRules::default()
        };
        let v = violations(&evaluate(&policy(rules), &request));
        assert!(
            v.contains(&"max_validity_days: 400 > 365".to_string()),
            "{v:?}"
        );
        assert!(
            v.contains(&"min_key_size: RSA 1024 < 2048".to_string()),
            "{v:?}"
        );
        assert!(
            v.iter().any(|v| v.starts_with("allowed_algorithms:")),
            "{v:?}"
        );
    }
}
