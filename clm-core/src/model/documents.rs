//! Typed JSON documents stored in JSONB (PostgreSQL) or checked TEXT (SQLite):
//! `roles.permissions`, `policies.policy_rules`, `workflows.workflow_definition`,
//! `certificates.subject_alternative_names`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::status::{CertificateKind, StepType};
use crate::{Error, Result};

/// Parses a JSON document, naming the offending field (as a path such as
/// `steps[1].approvers`) when it is malformed.
pub fn parse_document<T: DeserializeOwned>(document: &'static str, json: &str) -> Result<T> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." || path.is_empty() {
            document.to_string()
        } else {
            format!("{document}.{path}")
        };
        Error::invalid(field, err.into_inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|err| Error::invalid(document, err.to_string()))?;
    Ok(value)
}

/// A document that is checked beyond its shape when it arrives from a
/// caller (known permissions, sane policy limits, a well-formed workflow).
pub trait Document: Sized {
    /// Parses JSON text and checks it; InvalidInput names the offending field.
    fn parse(json: &str) -> Result<Self>;
}

/// Deserializes a caller's document, given as an object or as JSON text,
/// through its checks (`#[serde(deserialize_with = "document")]`). A
/// refusal names the document's own field path in its message.
pub fn document<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Document,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    let text = match value {
        serde_json::Value::String(text) => text,
        other => other.to_string(),
    };
    T::parse(&text).map_err(|err| serde::de::Error::custom(document_error(err)))
}

/// [`document`] for an optional field (absent or null is None).
pub fn optional_document<'de, D, T>(deserializer: D) -> std::result::Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Document,
{
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => document(value).map(Some).map_err(serde::de::Error::custom),
    }
}

fn document_error(err: Error) -> String {
    match err {
        Error::InvalidInput { field, reason, .. } => format!("{field}: {reason}"),
        other => other.to_string(),
    }
}

/// `roles.permissions`: resource -> allowed actions, e.g.
/// `{"certificates": ["create","read"], "audit": ["read"]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Permissions(pub BTreeMap<String, Vec<String>>);

/// Resources and the actions each accepts. A permission outside this table is
/// refused when a role is created, so a typo cannot grant nothing silently.
pub const PERMISSION_CATALOG: &[(&str, &[&str])] = &[
    (
        "certificates",
        &[
            "create", "read", "update", "delete", "revoke", "export", "import", "renew",
        ],
    ),
    // `rollover`: plan and run a CA rollover (a successor CA, cross
    // certificates, reissued leaves, the old CA retired).
    (
        "authorities",
        &["create", "read", "sign_crl", "export_key", "rollover"],
    ),
    ("requests", &["create", "read", "cancel"]),
    ("policies", &["create", "read", "update", "delete"]),
    (
        "workflows",
        &["create", "read", "update", "delete", "execute", "approve"],
    ),
    ("users", &["create", "read", "update", "delete", "unlock"]),
    ("roles", &["create", "read", "update", "delete", "assign"]),
    (
        "organizations",
        &["create", "read", "update", "delete", "manage_members"],
    ),
    ("api_keys", &["create", "read", "revoke"]),
    ("keys", &["rotate", "read"]),
    ("notifications", &["read", "deliver"]),
    ("audit", &["read", "verify", "archive"]),
    // `maintain`: database statistics and maintenance (VACUUM, ANALYZE).
    ("system", &["admin", "lifecycle", "maintain"]),
];

impl Document for Permissions {
    fn parse(json: &str) -> Result<Self> {
        Permissions::parse(json)
    }
}

impl Permissions {
    /// Parses permissions JSON and [`validate`](Self::validate)s it.
    pub fn parse(json: &str) -> Result<Self> {
        let permissions: Self = parse_document("permissions", json)?;
        permissions.validate()?;
        Ok(permissions)
    }

    /// Every resource and action must be in [`PERMISSION_CATALOG`].
    pub fn validate(&self) -> Result<()> {
        for (resource, actions) in &self.0 {
            let known = PERMISSION_CATALOG
                .iter()
                .find(|(name, _)| name == resource)
                .ok_or_else(|| {
                    Error::invalid(
                        format!("permissions.{resource}"),
                        "unknown resource".to_string(),
                    )
                })?;
            for action in actions {
                if action != "*" && !known.1.contains(&action.as_str()) {
                    return Err(Error::invalid(
                        format!("permissions.{resource}"),
                        format!("unknown action {action:?}; known: {}", known.1.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether `action` on `resource` is granted, by name or by `"*"`.
    pub fn allows(&self, resource: &str, action: &str) -> bool {
        self.0.get(resource).is_some_and(|actions| {
            actions
                .iter()
                .any(|granted| granted == action || granted == "*")
        })
    }

    /// Every permission of the catalog: what the built-in administrator holds.
    pub fn all() -> Self {
        Permissions(
            PERMISSION_CATALOG
                .iter()
                .map(|(resource, actions)| {
                    (
                        resource.to_string(),
                        actions.iter().map(|a| a.to_string()).collect(),
                    )
                })
                .collect(),
        )
    }

    /// A set from `(resource, actions)` pairs, not validated (the built-in roles use it).
    pub fn from_pairs(pairs: &[(&str, &[&str])]) -> Self {
        Permissions(
            pairs
                .iter()
                .map(|(resource, actions)| {
                    (
                        resource.to_string(),
                        actions.iter().map(|a| a.to_string()).collect(),
                    )
                })
                .collect(),
        )
    }

    /// Union with another set (effective permissions of several roles).
    pub fn merge(&mut self, other: &Permissions) {
        for (resource, actions) in &other.0 {
            let entry = self.0.entry(resource.clone()).or_default();
            for action in actions {
                if !entry.contains(action) {
                    entry.push(action.clone());
                }
            }
        }
    }

    /// True when every permission of `self` is also granted by `other`.
    pub fn is_subset_of(&self, other: &Permissions) -> bool {
        self.0
            .iter()
            .all(|(resource, actions)| actions.iter().all(|action| other.allows(resource, action)))
    }

    /// What both sets grant (an API key's scopes over its user's grants).
    pub fn intersection(&self, other: &Permissions) -> Permissions {
        let mut both = BTreeMap::new();
        for (resource, actions) in &self.0 {
            let kept: Vec<String> = if actions.iter().any(|a| a == "*") {
                other.0.get(resource).cloned().unwrap_or_default()
            } else {
                actions
                    .iter()
                    .filter(|action| other.allows(resource, action))
                    .cloned()
                    .collect()
            };
            if !kept.is_empty() {
                both.insert(resource.clone(), kept);
            }
        }
        Permissions(both)
    }

    /// Grants nothing.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

/// `policies.policy_rules`. The summary's six rules plus what a real policy
/// needs (domains, SAN types, certificate kinds, the approval workflow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRules {
    /// Longest validity a certificate may be issued with.
    pub max_validity_days: u32,
    /// Smallest RSA modulus in bits.
    #[serde(default = "default_min_key_size")]
    pub min_key_size: u32,
    /// Smallest elliptic-curve size in bits (256 = P-256).
    #[serde(default = "default_min_ec_key_size")]
    pub min_ec_key_size: u32,
    /// Key algorithm families allowed: "RSA", "ECDSA", "Ed25519".
    #[serde(default = "default_algorithms")]
    pub allowed_algorithms: Vec<String>,
    /// Requests wait for an approval workflow before anything is signed.
    #[serde(default)]
    pub require_approval: bool,
    /// Workflow a request goes through when approval is required; the default
    /// workflow when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_code: Option<String>,
    /// The CAs this policy binds (`certificates.id` of each CA). Empty: the
    /// CAs of the policy's own organization (for a shared policy, the shared
    /// CAs, used without an organization). Listing a shared CA in an
    /// organization's policy is what lets that organization use it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuer_ids: Vec<crate::model::CertificateId>,
    /// `run_lifecycle` renews its certificates once they are within `renewal_threshold_days`.
    #[serde(default)]
    pub auto_renewal: bool,
    /// Days before expiry a certificate counts as expiring (and is renewed, with
    /// `auto_renewal`); smaller than `max_validity_days`.
    #[serde(default = "default_renewal_threshold")]
    pub renewal_threshold_days: u32,
    /// DNS names allowed in subject CN and SANs. Empty = any. `example.com`
    /// allows exactly that name, plus its subdomains when `allow_subdomains`.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// Names below an allowed domain are allowed too (`a.example.com` under `example.com`).
    #[serde(default)]
    pub allow_subdomains: bool,
    /// Wildcard names (`*.example.com`) may be issued.
    #[serde(default)]
    pub allow_wildcards: bool,
    /// IP ranges (CIDR, IPv4 or IPv6, e.g. `10.0.0.0/8`, `2001:db8::/32`)
    /// that IP names may fall in. When this or `allowed_domains` is set the
    /// policy restricts names: an IP outside every range is refused, so an
    /// empty list then allows no IP at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ip_ranges: Vec<String>,
    /// SAN types allowed ("DNS", "IP", "EMAIL", "URI"). Empty = any.
    #[serde(default)]
    pub allowed_san_types: Vec<String>,
    /// Certificate kinds this policy may issue. Empty = any end-entity kind.
    #[serde(default)]
    pub allowed_kinds: Vec<CertificateKind>,
}

fn default_min_key_size() -> u32 {
    2048
}
fn default_min_ec_key_size() -> u32 {
    256
}
fn default_algorithms() -> Vec<String> {
    vec!["RSA".into(), "ECDSA".into(), "Ed25519".into()]
}
fn default_renewal_threshold() -> u32 {
    30
}

impl Default for PolicyRules {
    fn default() -> Self {
        PolicyRules {
            max_validity_days: 365,
            min_key_size: default_min_key_size(),
            min_ec_key_size: default_min_ec_key_size(),
            allowed_algorithms: default_algorithms(),
            require_approval: false,
            workflow_code: None,
            issuer_ids: Vec::new(),
            auto_renewal: false,
            renewal_threshold_days: default_renewal_threshold(),
            allowed_domains: Vec::new(),
            allow_subdomains: false,
            allow_wildcards: false,
            allowed_ip_ranges: Vec::new(),
            allowed_san_types: Vec::new(),
            allowed_kinds: Vec::new(),
        }
    }
}

impl Document for PolicyRules {
    fn parse(json: &str) -> Result<Self> {
        PolicyRules::parse(json)
    }
}

impl PolicyRules {
    /// Parses policy rules JSON and [`validate`](Self::validate)s it.
    pub fn parse(json: &str) -> Result<Self> {
        let rules: Self = parse_document("policy_rules", json)?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks limits and lists: validity 1..=36500 days, threshold below it, known
    /// algorithms and SAN types, plain domains, CIDR ranges. InvalidInput names the rule.
    pub fn validate(&self) -> Result<()> {
        if self.max_validity_days == 0 || self.max_validity_days > 36_500 {
            return Err(Error::invalid(
                "policy_rules.max_validity_days",
                "must be between 1 and 36500",
            ));
        }
        if self.renewal_threshold_days >= self.max_validity_days {
            return Err(Error::invalid(
                "policy_rules.renewal_threshold_days",
                "must be smaller than max_validity_days",
            ));
        }
        for algorithm in &self.allowed_algorithms {
            if !["RSA", "ECDSA", "Ed25519"].contains(&algorithm.as_str()) {
                return Err(Error::invalid(
                    "policy_rules.allowed_algorithms",
                    format!("{algorithm:?} is not one of RSA, ECDSA, Ed25519"),
                ));
            }
        }
        for san_type in &self.allowed_san_types {
            if !["DNS", "IP", "EMAIL", "URI"].contains(&san_type.as_str()) {
                return Err(Error::invalid(
                    "policy_rules.allowed_san_types",
                    format!("{san_type:?} is not one of DNS, IP, EMAIL, URI"),
                ));
            }
        }
        for domain in &self.allowed_domains {
            if domain.is_empty()
                || domain.starts_with('.')
                || domain.contains('*')
                || normalize_host(domain).is_err()
            {
                return Err(Error::invalid(
                    "policy_rules.allowed_domains",
                    format!("{domain:?} must be a plain domain such as example.com"),
                ));
            }
        }
        for (index, range) in self.allowed_ip_ranges.iter().enumerate() {
            IpRange::parse(range).map_err(|reason| {
                Error::invalid(format!("policy_rules.allowed_ip_ranges[{index}]"), reason)
            })?;
        }
        Ok(())
    }
}

/// One CIDR range of `policy_rules.allowed_ip_ranges`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// `address/prefix` with no host bits set, so a typo such as
    /// `10.0.0.1/8` is an error rather than a silently wider range.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let (address, prefix) = text.split_once('/').ok_or_else(|| {
            format!("{text:?} is not a CIDR range such as 10.0.0.0/8 or 2001:db8::/32")
        })?;
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} in {text:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max && !prefix.starts_with('+'))
            .ok_or_else(|| format!("prefix length in {text:?} must be 0 to {max}"))?;
        let range = IpRange { network, prefix };
        if range.masked(network) != network {
            return Err(format!(
                "{text:?} has host bits set; the network is {}/{prefix}",
                range.masked(network)
            ));
        }
        Ok(range)
    }

    /// `ip` with the bits past the prefix cleared (same family as the range).
    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & mask).into())
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & mask).into())
            }
        }
    }

    /// The network address (host bits clear).
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The range of `address` and the netmask `mask` (same family, a run of
    /// ones then zeros), as NameConstraints encode it; None otherwise.
    pub fn from_mask(address: IpAddr, mask: IpAddr) -> Option<Self> {
        let (bits, width) = match (address, mask) {
            (IpAddr::V4(_), IpAddr::V4(m)) => (u128::from(u32::from(m)) << 96, 32u32),
            (IpAddr::V6(_), IpAddr::V6(m)) => (u128::from(m), 128u32),
            _ => return None,
        };
        let prefix = bits.leading_ones();
        if bits.checked_shl(prefix).unwrap_or(0) != 0 || prefix > width {
            return None;
        }
        let range = IpRange {
            network: address,
            prefix: u8::try_from(prefix).ok()?,
        };
        Some(IpRange {
            network: range.masked(address),
            ..range
        })
    }

    /// The netmask of the range, in the range's family.
    pub fn mask(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(_) => IpAddr::V4(
                u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0)
                    .into(),
            ),
            IpAddr::V6(_) => IpAddr::V6(
                u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0)
                    .into(),
            ),
        }
    }

    /// Whether every address of `other` is in this range.
    pub fn covers(&self, other: &IpRange) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    /// Whether `ip` is in the range. Families never mix: an IPv4-mapped IPv6
    /// address is an IPv6 address and needs an IPv6 range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }
}

/// One entry of `certificates.subject_alternative_names`:
/// `{"type": "DNS", "value": "example.com"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "value")]
pub enum SubjectAlternativeName {
    /// A DNS name, A-labels for IDNs; `*.` allowed as the left-most label.
    #[serde(rename = "DNS")]
    Dns(String),
    /// An IPv4 or IPv6 address.
    #[serde(rename = "IP")]
    Ip(IpAddr),
    /// An e-mail address (rfc822Name), ASCII.
    #[serde(rename = "EMAIL")]
    Email(String),
    /// An absolute URI (`scheme://...`).
    #[serde(rename = "URI")]
    Uri(String),
}

impl SubjectAlternativeName {
    /// The `type` tag: `DNS`, `IP`, `EMAIL` or `URI`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SubjectAlternativeName::Dns(_) => "DNS",
            SubjectAlternativeName::Ip(_) => "IP",
            SubjectAlternativeName::Email(_) => "EMAIL",
            SubjectAlternativeName::Uri(_) => "URI",
        }
    }

    /// The value as text (an IP address in its usual notation).
    pub fn value(&self) -> String {
        match self {
            SubjectAlternativeName::Dns(v)
            | SubjectAlternativeName::Email(v)
            | SubjectAlternativeName::Uri(v) => v.clone(),
            SubjectAlternativeName::Ip(ip) => ip.to_string(),
        }
    }

    /// Parses a JSON array of names and [`validate`](Self::validate)s each; InvalidInput names
    /// the index of a bad one.
    pub fn parse_list(json: &str) -> Result<Vec<Self>> {
        let names: Vec<Self> = parse_document("subject_alternative_names", json)?;
        for (index, name) in names.iter().enumerate() {
            name.validate().map_err(|reason| {
                Error::invalid(format!("subject_alternative_names[{index}]"), reason)
            })?;
        }
        Ok(names)
    }

    /// The name as clm signs it: DNS names and e-mail domains normalized by
    /// [`normalize_host`] (lower case, no trailing dot, A-labels), then
    /// checked by [`Self::validate`]. URIs and IPs are kept as given.
    pub fn normalized(&self) -> std::result::Result<Self, String> {
        let name = match self {
            SubjectAlternativeName::Dns(name) => SubjectAlternativeName::Dns(normalize_host(name)?),
            SubjectAlternativeName::Email(address) => match address.rsplit_once('@') {
                Some((local, domain)) => {
                    SubjectAlternativeName::Email(format!("{local}@{}", normalize_host(domain)?))
                }
                None => return Err(format!("{address:?} is not an email address")),
            },
            other => other.clone(),
        };
        name.validate()?;
        Ok(name)
    }

    /// Syntax check of the value for its type.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            SubjectAlternativeName::Dns(name) => validate_dns_name(name),
            SubjectAlternativeName::Ip(_) => Ok(()),
            SubjectAlternativeName::Email(address) => {
                // A mailbox is on one host: no wildcard domain.
                let valid = address.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && !domain.starts_with('*')
                        && validate_dns_name(domain).is_ok()
                }) && address.is_ascii();
                if valid {
                    Ok(())
                } else {
                    Err(format!("{address:?} is not an email address"))
                }
            }
            SubjectAlternativeName::Uri(uri) => {
                let valid = uri.split_once("://").is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                        && !rest.is_empty()
                }) && uri.is_ascii()
                    && !uri.contains(char::is_whitespace);
                if valid {
                    Ok(())
                } else {
                    Err(format!("{uri:?} is not an absolute URI"))
                }
            }
        }
    }
}

/// A DNS name as it may appear in a certificate: ASCII (IDNs as A-labels),
/// labels of 1..=63 letters, digits or hyphens, at most 253 characters, and at
/// most one leading `*.` wildcard label.
pub fn validate_dns_name(name: &str) -> std::result::Result<(), String> {
    let body = name.strip_prefix("*.").unwrap_or(name);
    let valid = !body.is_empty()
        && name.len() <= 253
        && body.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid DNS name"))
    }
}

/// The form of a host name that policies compare: lower case, one trailing
/// dot removed, U-labels converted to A-labels (UTS #46, STD3 rules; a name
/// that is not valid IDNA is refused), no empty labels, and `*` only as the
/// whole left-most label. The result passes [`validate_dns_name`].
pub fn normalize_host(name: &str) -> std::result::Result<String, String> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    let (wildcard, body) = match trimmed.strip_prefix("*.") {
        Some(body) => (true, body),
        None => (false, trimmed),
    };
    if body.is_empty() || body.split('.').any(str::is_empty) {
        return Err(format!("{name:?} has an empty label"));
    }
    if body.contains('*') {
        return Err(format!(
            "{name:?}: a wildcard is allowed only as the whole left-most label"
        ));
    }
    let ascii = Uts46::new()
        .to_ascii(
            body.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Verify,
        )
        .map_err(|_| format!("{name:?} is not a valid IDNA host name"))?;
    let normalized = if wildcard {
        format!("*.{ascii}")
    } else {
        ascii.into_owned()
    };
    validate_dns_name(&normalized)?;
    Ok(normalized)
}

/// `workflows.workflow_definition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDefinition {
    /// The steps in order; at least one, and at least one approval step for it to be started.
    pub steps: Vec<WorkflowStepDefinition>,
    /// Hours a request may wait for approval before it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_hours: Option<u32>,
}

/// One step of `workflows.workflow_definition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowStepDefinition {
    /// Caller-chosen number, unique within the definition.
    pub step_id: u32,
    /// What the step does; only approval steps take approvers.
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// Name to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Approval steps: `role:CODE` or `user:UUID`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Distinct approvals needed (M of N); 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_approvals: Option<u32>,
    /// Free JSON kept with the step; clm does not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// A parsed approver reference of a workflow definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApproverRef {
    /// `role:CODE`: any holder of the role with that code.
    Role(String),
    /// `user:UUID`: that user.
    User(uuid::Uuid),
}

impl ApproverRef {
    /// Parses `role:CODE` or `user:UUID`; the error says which form was expected.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        if let Some(code) = text.strip_prefix("role:") {
            if code.is_empty() {
                return Err("role approver needs a role code after \"role:\"".into());
            }
            Ok(ApproverRef::Role(code.to_string()))
        } else if let Some(id) = text.strip_prefix("user:") {
            uuid::Uuid::parse_str(id)
                .map(ApproverRef::User)
                .map_err(|_| format!("{id:?} after \"user:\" is not a UUID"))
        } else {
            Err(format!("{text:?} must be \"role:CODE\" or \"user:UUID\""))
        }
    }
}

impl Document for WorkflowDefinition {
    fn parse(json: &str) -> Result<Self> {
        WorkflowDefinition::parse(json)
    }
}

impl WorkflowDefinition {
    /// Parses a definition and checks its shape ([`validate_shape`](Self::validate_shape)).
    pub fn parse(json: &str) -> Result<Self> {
        let definition: Self = parse_document("workflow_definition", json)?;
        definition.validate_shape()?;
        Ok(definition)
    }

    /// Structural checks that need no database: at least one step, unique step
    /// ids, approvers well formed on approval steps and only there. Whether the
    /// approvers exist is checked by the service.
    pub fn validate_shape(&self) -> Result<()> {
        if self.steps.is_empty() {
            return Err(Error::invalid(
                "workflow_definition.steps",
                "needs at least one step",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (index, step) in self.steps.iter().enumerate() {
            let field = |name: &str| format!("workflow_definition.steps[{index}].{name}");
            if !seen.insert(step.step_id) {
                return Err(Error::invalid(
                    field("step_id"),
                    format!("step_id {} is used twice", step.step_id),
                ));
            }
            match step.step_type {
                StepType::Approval => {
                    if step.approvers.is_empty() {
                        return Err(Error::invalid(
                            field("approvers"),
                            "an approval step needs approvers",
                        ));
                    }
                    for approver in &step.approvers {
                        ApproverRef::parse(approver)
                            .map_err(|reason| Error::invalid(field("approvers"), reason))?;
                    }
                    if step.required_approvals == Some(0) {
                        return Err(Error::invalid(
                            field("required_approvals"),
                            "must be at least 1",
                        ));
                    }
                }
                _ => {
                    if !step.approvers.is_empty() || step.required_approvals.is_some() {
                        return Err(Error::invalid(
                            field("approvers"),
                            "only approval steps take approvers",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::WorkflowDefinition;

    /// Found by the `documents` fuzz target: a float in a step's config read
    /// back one bit off (serde_json without `float_roundtrip`), so the
    /// definition written out was not the definition accepted.
    #[test]
    fn workflow_definition_numbers_survive_writing_and_reading_back() {
        let json =
            r#"{"steps":[{"step_id":1,"type":"issuance","config":{"any":[0,4.42444444e+70]}}]}"#;
        let parsed = WorkflowDefinition::parse(json).expect("a valid definition");
        let written = serde_json::to_string(&parsed).expect("serializes");
        let back = WorkflowDefinition::parse(&written).expect("reads back");
        assert_eq!(back, parsed, "{written}");
        assert!(written.contains("4.42444444e+70"), "{written}");
    }
}
