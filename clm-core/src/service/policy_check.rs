//! Pure policy evaluation: a request's facts against a policy's rules, before
//! anything is signed. No I/O. Every rule yields one [`RuleOutcome`] naming
//! all its offenders, so a refusal lists every violated rule at once.

use serde::Serialize;

use crate::crypto::DistinguishedName;
use crate::crypto::name_constraints::{NameConstraints, PresentedName, Subtree};
use std::net::IpAddr;

use crate::model::{
    CertificateId, CertificateKind, IpRange, OrganizationId, Policy, PolicyStatus,
    SubjectAlternativeName, normalize_host,
};
use crate::{Error, Result};

/// One rule's verdict. `rule` is the policy_rules field name (or `status`,
/// `organization` for the policy row itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RuleOutcome {
    /// The rule's name: a `policy_rules` field, or `status`, `organization`, `issuer`.
    pub rule: String,
    /// Whether the request satisfies it.
    pub passed: bool,
    /// What was checked, or what was wrong.
    pub detail: String,
}

/// The facts of a request that policies judge.
#[derive(Debug, Clone)]
pub struct PolicyInput<'a> {
    /// The organization the certificate would belong to.
    pub organization_id: Option<OrganizationId>,
    /// The subject asked for.
    pub subject: &'a DistinguishedName,
    /// The SANs asked for.
    pub sans: &'a [SubjectAlternativeName],
    /// What the certificate is for.
    pub kind: CertificateKind,
    /// The lifetime asked for, in days.
    pub validity_days: u32,
    /// "RSA", "ECDSA", "Ed25519" (or whatever a CSR carried).
    pub key_family: &'a str,
    /// RSA modulus or curve size in bits.
    pub key_bits: u32,
    /// The signing CA (`certificates.id`) and its organization; judged by
    /// the `issuer_ids` rule (None skips it: no CA chosen yet).
    pub issuer: Option<(CertificateId, Option<OrganizationId>)>,
    /// The CAs the signing CA succeeds through rollovers: a policy listing
    /// one of them binds their successor too.
    pub issuer_predecessors: &'a [CertificateId],
}

/// Whether `policy` lets CA `ca_id` (of `ca_organization`) issue for
/// `organization`: a CA it lists; or, when it lists none, a CA of the
/// certificate's own organization (shared CAs for shared certificates). A
/// shared CA serves an organization only through a policy that lists it.
/// A CA that succeeds a listed one through a rollover (`predecessors`) is
/// bound as that one was, so a rollover needs no policy edited.
pub fn policy_binds(
    policy: &Policy,
    ca_id: CertificateId,
    predecessors: &[CertificateId],
    ca_organization: Option<OrganizationId>,
    organization: Option<OrganizationId>,
) -> bool {
    let listed = &policy.policy_rules.0.issuer_ids;
    if !listed.is_empty() {
        return listed.contains(&ca_id) || predecessors.iter().any(|p| listed.contains(p));
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

/// Where a name was found, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    CommonName,
    SubjectEmail,
    Dns,
    Email,
    Uri,
    Ip,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::CommonName => "CN",
            Source::SubjectEmail => "subject emailAddress",
            Source::Dns => "DNS",
            Source::Email => "EMAIL",
            Source::Uri => "URI",
            Source::Ip => "IP",
        }
    }

    /// Only a certificate's host names may be wildcards.
    fn may_be_wildcard(self) -> bool {
        matches!(self, Source::CommonName | Source::Dns)
    }
}

/// A name of a request as the policy judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// A normalized host name ([`normalize_host`]).
    Host(Source, String),
    Ip(Source, IpAddr),
    /// Not a host name at all: refused whenever the policy restricts names.
    Unusable(Source, String),
}

/// The host of a mailbox (`local@host`).
fn mailbox_host(source: Source, address: &str) -> Name {
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() => host_name(source, address, domain),
        _ => Name::Unusable(
            source,
            format!("{} {address:?} is not an email address", source.label()),
        ),
    }
}

/// `text` (taken from `whole`) as a host name, or why it is none.
fn host_name(source: Source, whole: &str, text: &str) -> Name {
    match normalize_host(text) {
        Ok(host) if host.starts_with("*.") && !source.may_be_wildcard() => Name::Unusable(
            source,
            format!("{} {whole:?}: {host} is a wildcard", source.label()),
        ),
        Ok(host) => Name::Host(source, host),
        Err(reason) => Name::Unusable(source, format!("{} {whole:?}: {reason}", source.label())),
    }
}

/// The host of an absolute URI (`scheme://[userinfo@]host[:port]...`).
fn uri_host(uri: &str) -> Name {
    let authority = uri
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""))
        .unwrap_or("");
    // Parsers disagree on backslashes in the authority; refuse what they
    // could read as another host.
    if authority.contains('\\') {
        return Name::Unusable(
            Source::Uri,
            format!("URI {uri:?} has a backslash in its host"),
        );
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => match bracketed
            .split_once(']')
            .map(|(ip, _)| ip.parse::<IpAddr>())
        {
            Some(Ok(ip)) => return Name::Ip(Source::Uri, ip),
            _ => {
                return Name::Unusable(Source::Uri, format!("URI {uri:?} has a malformed IP host"));
            }
        },
        None => host_port.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Name::Unusable(Source::Uri, format!("URI {uri:?} has no host"));
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => Name::Ip(Source::Uri, ip),
        Err(_) => host_name(Source::Uri, uri, host),
    }
}

/// Every name a request carries: the CN (always; an IP literal counts as an
/// IP), the subject emailAddress, and every SAN (the host of EMAIL and URI).
fn names(input: &PolicyInput<'_>) -> Vec<Name> {
    let mut names = Vec::with_capacity(input.sans.len().saturating_add(2));
    if let Some(cn) = input
        .subject
        .common_name
        .as_deref()
        .filter(|cn| !cn.is_empty())
    {
        names.push(match cn.parse::<IpAddr>() {
            Ok(ip) => Name::Ip(Source::CommonName, ip),
            Err(_) => host_name(Source::CommonName, cn, cn),
        });
    }
    if let Some(email) = input.subject.email.as_deref().filter(|e| !e.is_empty()) {
        names.push(mailbox_host(Source::SubjectEmail, email));
    }
    for san in input.sans {
        names.push(match san {
            SubjectAlternativeName::Dns(name) => host_name(Source::Dns, name, name),
            SubjectAlternativeName::Email(address) => mailbox_host(Source::Email, address),
            SubjectAlternativeName::Uri(uri) => uri_host(uri),
            SubjectAlternativeName::Ip(ip) => Name::Ip(Source::Ip, *ip),
        });
    }
    let mut seen = Vec::with_capacity(names.len());
    names.retain(|name| {
        let fresh = !seen.contains(name);
        if fresh {
            seen.push(name.clone());
        }
        fresh
    });
    names
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
    let mut outcomes = Vec::with_capacity(11);

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
            if policy_binds(
                policy,
                ca_id,
                input.issuer_predecessors,
                ca_organization,
                input.organization_id,
            ) {
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

    let names = names(input);
    let wildcards: Vec<String> = names
        .iter()
        .filter_map(|name| match name {
            Name::Host(source, host) if host.starts_with("*.") => {
                Some(format!("{host} ({}) is a wildcard", source.label()))
            }
            _ => None,
        })
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

    // A policy that lists domains or IP ranges restricts names: every name
    // must then be covered by one of its lists, and a name that is neither
    // a host name nor an IP address is covered by none.
    let restricted = !rules.allowed_domains.is_empty() || !rules.allowed_ip_ranges.is_empty();
    let domains: Vec<String> = rules
        .allowed_domains
        .iter()
        .map(|d| normalize_host(d).unwrap_or_else(|_| d.to_ascii_lowercase()))
        .collect();
    let domain_failures: Vec<String> = if restricted {
        names
            .iter()
            .filter_map(|name| match name {
                Name::Host(source, host) => {
                    let allowed = match host.strip_prefix("*.") {
                        // `*.base` names hosts one label below base: a subdomain match.
                        Some(base) => {
                            let probe = format!("x.{base}");
                            rules.allow_subdomains
                                && domains.iter().any(|d| within(&probe, d, true))
                        }
                        None => domains
                            .iter()
                            .any(|d| within(host, d, rules.allow_subdomains)),
                    };
                    (!allowed).then(|| {
                        format!(
                            "{host} ({}) not within [{}]{}",
                            source.label(),
                            rules.allowed_domains.join(", "),
                            if rules.allow_subdomains {
                                ""
                            } else {
                                " (subdomains not allowed)"
                            }
                        )
                    })
                }
                Name::Unusable(_, reason) => Some(reason.clone()),
                Name::Ip(..) => None,
            })
            .collect()
    } else {
        vec![]
    };
    let hosts = names.iter().filter(|n| matches!(n, Name::Host(..))).count();
    outcomes.push(outcome(
        "allowed_domains",
        domain_failures,
        if restricted {
            format!("{hosts} host name(s) within the allowed domains")
        } else {
            "any domain".into()
        },
    ));

    let ranges: Vec<IpRange> = rules
        .allowed_ip_ranges
        .iter()
        .filter_map(|r| IpRange::parse(r).ok())
        .collect();
    let ip_failures: Vec<String> = if restricted {
        names
            .iter()
            .filter_map(|name| match name {
                Name::Ip(source, ip) if !ranges.iter().any(|r| r.contains(*ip)) => {
                    Some(if ranges.is_empty() {
                        format!("{ip} ({}): the policy allows no IP address", source.label())
                    } else {
                        format!(
                            "{ip} ({}) not within [{}]",
                            source.label(),
                            rules.allowed_ip_ranges.join(", ")
                        )
                    })
                }
                _ => None,
            })
            .collect()
    } else {
        vec![]
    };
    outcomes.push(outcome(
        "allowed_ip_ranges",
        ip_failures,
        if restricted {
            "every IP within the allowed ranges".into()
        } else {
            "any IP".into()
        },
    ));

    outcomes
}

/// Every failed outcome, as a violation.
pub fn violations(outcomes: &[RuleOutcome]) -> Vec<crate::error::Violation> {
    outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(|o| crate::error::Violation::new(o.rule.clone(), o.detail.clone()))
        .collect()
}

/// Ok when every rule passed, else `PolicyViolation` listing each failure.
pub fn enforce(policy: &Policy, input: &PolicyInput<'_>) -> Result<()> {
    let violations = violations(&evaluate(policy, input));
    if violations.is_empty() {
        Ok(())
    } else {
        Err(refuse(violations))
    }
}

/// The names a certificate with `subject` and `sans` presents to name
/// constraints: the subject, its CN when a host name or IP (end-entity
/// certificates only: a CA's CN names the CA), its emailAddress, every SAN.
fn constrained_names(
    subject: &DistinguishedName,
    sans: &[SubjectAlternativeName],
    ca: bool,
) -> std::result::Result<Vec<PresentedName>, String> {
    let mut names = Vec::with_capacity(sans.len().saturating_add(3));
    if !subject.is_empty() {
        let name = subject.to_name().map_err(|err| err.to_string())?;
        names.push(PresentedName::DirectoryName(name));
    }
    if let Some(name) = subject
        .common_name
        .as_deref()
        .filter(|_| !ca)
        .and_then(PresentedName::from_common_name)
    {
        names.push(name);
    }
    if let Some(email) = subject.email.as_deref().filter(|e| !e.is_empty()) {
        names.push(PresentedName::Email(email.to_string()));
    }
    names.extend(sans.iter().map(|san| match san {
        SubjectAlternativeName::Dns(name) => PresentedName::Dns(name.clone()),
        SubjectAlternativeName::Ip(ip) => PresentedName::Ip(*ip),
        SubjectAlternativeName::Email(address) => PresentedName::Email(address.clone()),
        SubjectAlternativeName::Uri(uri) => PresentedName::Uri(uri.clone()),
    }));
    Ok(names)
}

/// The `name_constraints` rule: every name of the request (see
/// `constrained_names`) inside the constraints of every CA in the issuer's
/// chain (`chain`: each CA with its constraints, the issuer first), and, for
/// a sub-CA (`own_permitted` is Some), each of its own permitted subtrees
/// inside them too. None when the chain has no constraints.
pub fn name_constraints(
    subject: &DistinguishedName,
    sans: &[SubjectAlternativeName],
    own_permitted: Option<&[Subtree]>,
    chain: &[(String, NameConstraints)],
) -> Option<RuleOutcome> {
    if chain.is_empty() {
        return None;
    }
    let mut failures = Vec::new();
    let ca = own_permitted.is_some();
    let own_permitted = own_permitted.unwrap_or_default();
    match constrained_names(subject, sans, ca) {
        Ok(names) => {
            for (ca, constraints) in chain {
                for name in &names {
                    if let Some(why) = constraints.violation(name) {
                        failures.push(format!("{why} of CA {ca}"));
                    }
                }
                for subtree in own_permitted {
                    if let Some(why) = constraints.escape(subtree) {
                        failures.push(format!("{why} of CA {ca}"));
                    }
                }
            }
        }
        Err(reason) => failures.push(format!("the subject cannot be judged: {reason}")),
    }
    let cas: Vec<&str> = chain.iter().map(|(ca, _)| ca.as_str()).collect();
    Some(outcome(
        "name_constraints",
        failures,
        format!(
            "every name is within the name constraints of CA {}",
            cas.join(", ")
        ),
    ))
}

/// The refusal for `violations` (the only place one is made), logged with
/// the names of the rules (their details may quote the request: not logged).
pub(crate) fn refuse(violations: Vec<crate::error::Violation>) -> Error {
    let rules: Vec<&str> = violations.iter().map(|v| v.rule.as_str()).collect();
    tracing::info!(rules = ?rules, "policy refused the request");
    Error::PolicyViolation { violations }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PolicyId, PolicyRules};

    /// The violations as `rule: message` text, as the assertions read them.
    fn violations(outcomes: &[RuleOutcome]) -> Vec<String> {
        super::violations(outcomes)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

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
            issuer_predecessors: &[],
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
    fn host_names_are_normalized_or_refused() {
        assert_eq!(
            normalize_host("WWW.Example.COM.").as_deref(),
            Ok("www.example.com")
        );
        assert_eq!(
            normalize_host("Bücher.example.com").as_deref(),
            Ok("xn--bcher-kva.example.com")
        );
        assert_eq!(
            normalize_host("*.example.com").as_deref(),
            Ok("*.example.com")
        );
        for bad in [
            "",
            ".",
            "a..example.com",
            "example.com..",
            "xn--a.example.com",
            "f*o.example.com",
            "*.*.example.com",
            "a.*.example.com",
            "under_score.example.com",
            "-x.example.com",
        ] {
            assert!(normalize_host(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn ip_ranges_parse_strictly_and_never_mix_families() {
        let v4 = IpRange::parse("10.0.0.0/8").expect("v4");
        assert!(v4.contains("10.255.0.1".parse().expect("ip")));
        assert!(!v4.contains("11.0.0.1".parse().expect("ip")));
        assert!(!v4.contains("::ffff:10.0.0.1".parse().expect("ip")));
        let all = IpRange::parse("0.0.0.0/0").expect("all v4");
        assert!(all.contains("8.8.8.8".parse().expect("ip")));
        let v6 = IpRange::parse("2001:db8::/32").expect("v6");
        assert!(v6.contains("2001:db8::1".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        for bad in [
            "10.0.0.0",
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "x/8",
            "10.0.0.0/+8",
        ] {
            assert!(IpRange::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn every_name_is_judged() {
        let rules = PolicyRules {
            allowed_domains: vec!["example.com".into()],
            allow_subdomains: true,
            allowed_ip_ranges: vec!["10.0.0.0/8".into()],
            ..PolicyRules::default()
        };
        let subject = DistinguishedName {
            common_name: Some("intranet".into()),
            email: Some("a@evil.com".into()),
            ..Default::default()
        };
        let sans = [
            SubjectAlternativeName::Email("b@evil.org".into()),
            SubjectAlternativeName::Uri("https://user@evil.net:443/x".into()),
            SubjectAlternativeName::Uri("https://[2001:db8::1]/".into()),
            SubjectAlternativeName::Uri("https://a.example.com\\@b.example.com/".into()),
            SubjectAlternativeName::Ip("10.1.1.1".parse().expect("ip")),
        ];
        let v = violations(&evaluate(&policy(rules), &input(&subject, &sans)));
        let domains = v
            .iter()
            .find(|v| v.starts_with("allowed_domains:"))
            .expect("domains");
        for needle in ["intranet", "evil.com", "evil.org", "evil.net", "backslash"] {
            assert!(domains.contains(needle), "{needle} in {domains}");
        }
        let ips = v
            .iter()
            .find(|v| v.starts_with("allowed_ip_ranges:"))
            .expect("ips");
        assert!(
            ips.contains("2001:db8::1") && !ips.contains("10.1.1.1"),
            "{ips}"
        );
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
