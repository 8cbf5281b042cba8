//! Name constraints (RFC 5280 §4.2.1.10): the subtrees a host gives a CA,
//! their NameConstraints extension, and the one matcher that says whether
//! a name lies inside a subtree. Issuance judges requests with it, and the
//! self-check (`chain_check`) judges what was signed with it.

use std::fmt;
use std::net::IpAddr;

use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use serde::{Deserialize, Serialize};
use x509_cert::Certificate;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::constraints::name::{
    GeneralSubtree, NameConstraints as NameConstraintsExt,
};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;

use super::name::{DistinguishedName, attribute_text, format_name};
use super::pkix::oid;
use crate::model::{IpRange, normalize_host};
use crate::{Error, Result};

/// One subtree of a CA's name constraints, as a host writes it:
/// `{"type": "DNS", "value": "example.com"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "value")]
pub enum NameSubtree {
    /// A DNS domain: the name itself and every name below it
    /// (`example.com` covers `example.com` and `www.example.com`).
    #[serde(rename = "DNS")]
    Dns(String),
    /// An IP range in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); an
    /// address matches only a range of its own family.
    #[serde(rename = "IP")]
    Ip(String),
    /// A mailbox (`ops@example.com`), every mailbox on one host
    /// (`example.com`), or on any host below a domain (`.example.com`).
    #[serde(rename = "EMAIL")]
    Email(String),
    /// The host of a URI: one host (`example.com`) or any host below a
    /// domain (`.example.com`).
    #[serde(rename = "URI")]
    Uri(String),
    /// A directory name (RFC 4514, `O=Example,C=US`): subjects that begin
    /// with these RDNs (read from the root).
    #[serde(rename = "DIRNAME")]
    DirectoryName(String),
}

/// A subtree checked and in the form that is matched and encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subtree {
    /// A lower-case DNS domain (A-labels); a leading `.` (only from imported
    /// certificates) means the names below it, not the domain itself. Empty
    /// means every DNS name.
    Dns(String),
    /// An IP range.
    Ip(IpRange),
    /// `local@host`, `host` or `.domain` (host parts lower case).
    Email(String),
    /// `host` or `.domain` (lower case).
    UriHost(String),
    /// The RDNs a subject must begin with.
    DirectoryName(Name),
    /// A form clm never issues (otherName, x400Address, ...): constrains
    /// nothing clm signs. The text names the form.
    Other(&'static str),
}

/// A CA's permitted and excluded subtrees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// A name of a form listed here must lie in one of this form's subtrees.
    pub permitted: Vec<Subtree>,
    /// A name inside any of these is refused, whatever `permitted` says.
    pub excluded: Vec<Subtree>,
}

/// A name a certificate presents, as constraints judge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedName {
    /// A DNS name (a SAN, or a CN that is a host name), normalized.
    Dns(String),
    /// An IP address (a SAN, or a CN that is an IP literal).
    Ip(IpAddr),
    /// An e-mail address (a SAN, or the subject's emailAddress).
    Email(String),
    /// A URI SAN; its host is what is judged.
    Uri(String),
    /// The subject, when not empty.
    DirectoryName(Name),
}

impl PresentedName {
    /// A CN judged as a name: an IP literal, or a host name; None for a CN
    /// that is neither (`Example Root CA`), which no constraint form covers.
    pub fn from_common_name(cn: &str) -> Option<Self> {
        if let Ok(ip) = cn.parse::<IpAddr>() {
            return Some(PresentedName::Ip(ip));
        }
        // A CA's descriptive CN has spaces; only a host name counts.
        normalize_host(cn).ok().map(PresentedName::Dns)
    }
}

impl fmt::Display for PresentedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PresentedName::Dns(name) => write!(f, "DNS name {name}"),
            PresentedName::Ip(ip) => write!(f, "IP address {ip}"),
            PresentedName::Email(address) => write!(f, "e-mail address {address}"),
            PresentedName::Uri(uri) => write!(f, "URI {uri}"),
            PresentedName::DirectoryName(name) => write!(f, "subject {}", format_name(name)),
        }
    }
}

impl fmt::Display for Subtree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subtree::Dns(domain) => write!(f, "DNS:{domain}"),
            Subtree::Ip(range) => write!(f, "IP:{}/{}", range.network(), range.prefix()),
            Subtree::Email(value) => write!(f, "EMAIL:{value}"),
            Subtree::UriHost(host) => write!(f, "URI:{host}"),
            Subtree::DirectoryName(name) => write!(f, "DIRNAME:{}", format_name(name)),
            Subtree::Other(form) => write!(f, "{form}"),
        }
    }
}

/// `host` (or `.domain` when `leading_dot` allows it) normalized, or why not.
fn constraint_host(text: &str, leading_dot: bool) -> std::result::Result<String, String> {
    let (dot, body) = match text.strip_prefix('.') {
        Some(body) if leading_dot => (".", body),
        Some(_) => {
            return Err(format!(
                "{text:?}: write the domain without a leading dot; a DNS subtree covers the domain and every name below it"
            ));
        }
        None => ("", text),
    };
    let host = normalize_host(body)?;
    if host.starts_with('*') {
        return Err(format!("{text:?}: a subtree cannot be a wildcard"));
    }
    Ok(format!("{dot}{host}"))
}

impl NameSubtree {
    /// Checks the subtree and brings it to the form that is matched.
    pub fn checked(&self) -> std::result::Result<Subtree, String> {
        match self {
            NameSubtree::Dns(domain) => constraint_host(domain, false).map(Subtree::Dns),
            NameSubtree::Ip(cidr) => IpRange::parse(cidr).map(Subtree::Ip),
            NameSubtree::Email(value) => match value.rsplit_once('@') {
                Some((local, host)) => {
                    let valid_local =
                        !local.is_empty() && local.is_ascii() && !local.contains(['@', ' ', '\t']);
                    if !valid_local {
                        return Err(format!("{value:?} is not a mailbox"));
                    }
                    Ok(Subtree::Email(format!(
                        "{local}@{}",
                        constraint_host(host, false)?
                    )))
                }
                None => constraint_host(value, true).map(Subtree::Email),
            },
            NameSubtree::Uri(host) => {
                if host.contains("://") || host.contains('/') {
                    return Err(format!(
                        "{host:?}: give the host (example.com) or domain (.example.com), not a URI"
                    ));
                }
                constraint_host(host, true).map(Subtree::UriHost)
            }
            NameSubtree::DirectoryName(text) => {
                let name = DistinguishedName::parse(text).map_err(|err| err.to_string())?;
                if name.is_empty() {
                    return Err(format!("{text:?} is an empty directory name"));
                }
                name.to_name()
                    .map(Subtree::DirectoryName)
                    .map_err(|err| err.to_string())
            }
        }
    }
}

impl NameConstraints {
    /// The constraints a host asked for, checked; None when both lists are
    /// empty (no extension). A bad entry is InvalidInput naming it.
    pub fn from_request(
        permitted: &[NameSubtree],
        excluded: &[NameSubtree],
    ) -> Result<Option<Self>> {
        let check = |field: &str, list: &[NameSubtree]| -> Result<Vec<Subtree>> {
            let mut out: Vec<Subtree> = Vec::with_capacity(list.len());
            for (index, subtree) in list.iter().enumerate() {
                let checked = subtree
                    .checked()
                    .map_err(|reason| Error::invalid(format!("{field}[{index}]"), reason))?;
                if !out.contains(&checked) {
                    out.push(checked);
                }
            }
            Ok(out)
        };
        let constraints = NameConstraints {
            permitted: check("permitted_subtrees", permitted)?,
            excluded: check("excluded_subtrees", excluded)?,
        };
        Ok((!constraints.is_empty()).then_some(constraints))
    }

    /// True when it constrains nothing.
    pub fn is_empty(&self) -> bool {
        self.permitted.is_empty() && self.excluded.is_empty()
    }

    /// The critical NameConstraints extension (RFC 5280 §4.2.1.10: MUST be critical).
    pub fn to_extension(&self) -> Result<Extension> {
        let encode = |list: &[Subtree]| -> Result<Option<Vec<GeneralSubtree>>> {
            if list.is_empty() {
                return Ok(None);
            }
            list.iter()
                .map(|subtree| {
                    Ok(GeneralSubtree {
                        base: subtree.to_general_name()?,
                        minimum: 0,
                        maximum: None,
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(Some)
        };
        let value = NameConstraintsExt {
            permitted_subtrees: encode(&self.permitted)?,
            excluded_subtrees: encode(&self.excluded)?,
        };
        let der = value
            .to_der()
            .map_err(|err| Error::crypto(format!("cannot encode NameConstraints: {err}")))?;
        Ok(Extension {
            extn_id: oid::NAME_CONSTRAINTS,
            critical: true,
            extn_value: OctetString::new(der)
                .map_err(|err| Error::crypto(format!("cannot encode NameConstraints: {err}")))?,
        })
    }

    /// The NameConstraints of a certificate (DER), None without the
    /// extension. A malformed extension is an error: a CA whose
    /// constraints cannot be read must not sign.
    pub fn of_certificate(der: &[u8]) -> Result<Option<Self>> {
        let certificate = Certificate::from_der(der).map_err(|err| {
            Error::invalid("certificate", format!("cannot read the certificate: {err}"))
        })?;
        Self::of_extensions(
            certificate
                .tbs_certificate()
                .extensions()
                .map(Vec::as_slice)
                .unwrap_or(&[]),
        )
    }

    /// The NameConstraints among `extensions`, None without one.
    pub fn of_extensions(extensions: &[Extension]) -> Result<Option<Self>> {
        let Some(extension) = extensions
            .iter()
            .find(|e| e.extn_id == oid::NAME_CONSTRAINTS)
        else {
            return Ok(None);
        };
        let value = NameConstraintsExt::from_der(extension.extn_value.as_bytes())
            .map_err(|err| Error::crypto(format!("malformed NameConstraints: {err}")))?;
        let read = |list: Option<Vec<GeneralSubtree>>| -> Result<Vec<Subtree>> {
            list.unwrap_or_default()
                .iter()
                .map(|subtree| Subtree::from_general_name(&subtree.base))
                .collect()
        };
        Ok(Some(NameConstraints {
            permitted: read(value.permitted_subtrees)?,
            excluded: read(value.excluded_subtrees)?,
        }))
    }

    /// Why `name` breaks these constraints (excluded wins over permitted),
    /// or None when it keeps them.
    pub fn violation(&self, name: &PresentedName) -> Option<String> {
        if let Some(hit) = self
            .excluded
            .iter()
            .find(|s| s.same_form(name) && s.excludes(name))
        {
            return Some(format!("{name} is inside the excluded subtree {hit}"));
        }
        let permitted: Vec<&Subtree> = self
            .permitted
            .iter()
            .filter(|s| s.same_form(name))
            .collect();
        if permitted.is_empty() || permitted.iter().any(|s| s.permits(name)) {
            return None;
        }
        let list: Vec<String> = permitted.iter().map(ToString::to_string).collect();
        Some(format!(
            "{name} is outside the permitted subtrees {}",
            list.join(", ")
        ))
    }

    /// Why a sub-CA permitted `subtree` would reach beyond these
    /// constraints (outside every permitted subtree of its form, or inside
    /// an excluded one), or None.
    pub fn escape(&self, subtree: &Subtree) -> Option<String> {
        if let Some(hit) = self.excluded.iter().find(|outer| outer.covers(subtree)) {
            return Some(format!(
                "permitted subtree {subtree} is inside the excluded subtree {hit}"
            ));
        }
        let same: Vec<&Subtree> = self
            .permitted
            .iter()
            .filter(|outer| std::mem::discriminant(*outer) == std::mem::discriminant(subtree))
            .collect();
        if same.is_empty() || same.iter().any(|outer| outer.covers(subtree)) {
            return None;
        }
        let list: Vec<String> = same.iter().map(ToString::to_string).collect();
        Some(format!(
            "permitted subtree {subtree} is outside the permitted subtrees {}",
            list.join(", ")
        ))
    }
}

/// `name` is `domain` or a name below it.
fn in_domain(name: &str, domain: &str) -> bool {
    name == domain
        || name
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// `host` against a host constraint: `.domain` covers the names strictly
/// below it, anything else the host itself (`below` adds its subdomains,
/// the DNS rule); empty covers every host.
fn host_matches(host: &str, constraint: &str, below: bool) -> bool {
    let host = host.to_ascii_lowercase();
    if constraint.is_empty() {
        return true;
    }
    match constraint.strip_prefix('.') {
        Some(domain) => in_domain(&host, domain) && host != domain,
        None if below => in_domain(&host, constraint),
        None => host == constraint,
    }
}

/// The host of an absolute URI (`scheme://[userinfo@]host[:port]/...`),
/// lower case; None without one.
fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']')?.0,
        None => host_port.split(':').next().unwrap_or(""),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty() && !host.contains('\\')).then(|| host.to_ascii_lowercase())
}

/// Two RDNs equal for name constraints: same attributes, string values
/// compared without case and with inner white space collapsed (RFC 4518's
/// essentials), other values by their DER.
fn same_rdn(
    a: &x509_cert::name::RelativeDistinguishedName,
    b: &x509_cert::name::RelativeDistinguishedName,
) -> bool {
    let fold = |text: String| -> String {
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let (a, b): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.oid == y.oid
                    && match (attribute_text(&x.value), attribute_text(&y.value)) {
                        (Some(p), Some(q)) => fold(p) == fold(q),
                        _ => x.value == y.value,
                    }
            })
        })
}

/// `prefix`'s RDNs begin `name`'s (from the root).
fn name_begins_with(name: &Name, prefix: &Name) -> bool {
    let (name, prefix): (Vec<_>, Vec<_>) = (name.iter_rdn().collect(), prefix.iter_rdn().collect());
    prefix.len() <= name.len() && prefix.iter().zip(&name).all(|(p, n)| same_rdn(p, n))
}

impl Subtree {
    /// The subtree as a host would ask for it, to create a CA like one
    /// that has it. Forms clm does not write, and the leading-dot DNS form
    /// of some imported CAs, have no such spelling.
    pub fn to_request(&self) -> Result<NameSubtree> {
        match self {
            Subtree::Dns(domain) if !domain.starts_with('.') && !domain.is_empty() => {
                Ok(NameSubtree::Dns(domain.clone()))
            }
            Subtree::Ip(range) => Ok(NameSubtree::Ip(format!(
                "{}/{}",
                range.network(),
                range.prefix()
            ))),
            Subtree::Email(value) => Ok(NameSubtree::Email(value.clone())),
            Subtree::UriHost(host) => Ok(NameSubtree::Uri(host.clone())),
            Subtree::DirectoryName(name) => Ok(NameSubtree::DirectoryName(format_name(name))),
            other => Err(Error::invalid(
                "name_constraints",
                format!("subtree {other} cannot be given to a new CA"),
            )),
        }
    }

    fn from_general_name(name: &GeneralName) -> Result<Self> {
        let lower = |text: &dyn fmt::Display| text.to_string().to_ascii_lowercase();
        Ok(match name {
            GeneralName::DnsName(dns) => Subtree::Dns(lower(dns)),
            GeneralName::Rfc822Name(email) => {
                let text = email.to_string();
                Subtree::Email(match text.rsplit_once('@') {
                    Some((local, host)) => format!("{local}@{}", host.to_ascii_lowercase()),
                    None => text.to_ascii_lowercase(),
                })
            }
            GeneralName::UniformResourceIdentifier(uri) => Subtree::UriHost(lower(uri)),
            GeneralName::IpAddress(octets) => {
                let bytes = octets.as_bytes();
                let pair = match bytes.len() {
                    8 => {
                        let (a, m) = bytes.split_at(4);
                        <[u8; 4]>::try_from(a)
                            .ok()
                            .zip(<[u8; 4]>::try_from(m).ok())
                            .map(|(a, m)| (IpAddr::from(a), IpAddr::from(m)))
                    }
                    32 => {
                        let (a, m) = bytes.split_at(16);
                        <[u8; 16]>::try_from(a)
                            .ok()
                            .zip(<[u8; 16]>::try_from(m).ok())
                            .map(|(a, m)| (IpAddr::from(a), IpAddr::from(m)))
                    }
                    _ => None,
                };
                let range = pair.and_then(|(address, mask)| IpRange::from_mask(address, mask));
                Subtree::Ip(range.ok_or_else(|| {
                    Error::crypto(format!(
                        "NameConstraints IP subtree of {} bytes is not an address and a contiguous mask",
                        bytes.len()
                    ))
                })?)
            }
            GeneralName::DirectoryName(name) => Subtree::DirectoryName(name.clone()),
            GeneralName::OtherName(_) => Subtree::Other("otherName"),
            GeneralName::EdiPartyName(_) => Subtree::Other("ediPartyName"),
            GeneralName::RegisteredId(_) => Subtree::Other("registeredID"),
        })
    }

    fn to_general_name(&self) -> Result<GeneralName> {
        let ia5 = |text: &str| {
            Ia5String::new(text)
                .map_err(|err| Error::crypto(format!("subtree {text:?} is not IA5: {err}")))
        };
        Ok(match self {
            Subtree::Dns(domain) => GeneralName::DnsName(ia5(domain)?),
            Subtree::Email(value) => GeneralName::Rfc822Name(ia5(value)?),
            Subtree::UriHost(host) => GeneralName::UniformResourceIdentifier(ia5(host)?),
            Subtree::Ip(range) => {
                let octets = match (range.network(), range.mask()) {
                    (IpAddr::V4(a), IpAddr::V4(m)) => [a.octets(), m.octets()].concat(),
                    (IpAddr::V6(a), IpAddr::V6(m)) => [a.octets(), m.octets()].concat(),
                    _ => Vec::new(),
                };
                GeneralName::IpAddress(
                    OctetString::new(octets).map_err(|err| {
                        Error::crypto(format!("cannot encode an IP subtree: {err}"))
                    })?,
                )
            }
            Subtree::DirectoryName(name) => GeneralName::DirectoryName(name.clone()),
            Subtree::Other(form) => {
                return Err(Error::invalid(
                    "name_constraints",
                    format!("clm does not write {form} subtrees"),
                ));
            }
        })
    }

    /// Whether this subtree constrains names of `name`'s form.
    fn same_form(&self, name: &PresentedName) -> bool {
        matches!(
            (self, name),
            (Subtree::Dns(_), PresentedName::Dns(_))
                | (Subtree::Ip(_), PresentedName::Ip(_))
                | (Subtree::Email(_), PresentedName::Email(_))
                | (Subtree::UriHost(_), PresentedName::Uri(_))
                | (Subtree::DirectoryName(_), PresentedName::DirectoryName(_))
        )
    }

    /// Whether `name` (of the same form) lies inside this subtree.
    fn permits(&self, name: &PresentedName) -> bool {
        match (self, name) {
            (Subtree::Dns(domain), PresentedName::Dns(host)) => {
                // `*.a.example` names hosts below `a.example`: inside a
                // subtree when `a.example` is.
                let host = host.strip_prefix("*.").unwrap_or(host);
                host_matches(host, domain, true)
                    || (name_is_wildcard(name) && domain.strip_prefix('.') == Some(host))
            }
            (Subtree::Ip(range), PresentedName::Ip(ip)) => range.contains(*ip),
            (Subtree::Email(constraint), PresentedName::Email(address)) => {
                let Some((local, host)) = address.rsplit_once('@') else {
                    return false;
                };
                match constraint.rsplit_once('@') {
                    Some((c_local, c_host)) => {
                        local == c_local && host.eq_ignore_ascii_case(c_host)
                    }
                    None => host_matches(host, constraint, false),
                }
            }
            (Subtree::UriHost(constraint), PresentedName::Uri(uri)) => {
                uri_host(uri).is_some_and(|host| host_matches(&host, constraint, false))
            }
            (Subtree::DirectoryName(prefix), PresentedName::DirectoryName(subject)) => {
                name_begins_with(subject, prefix)
            }
            _ => false,
        }
    }

    /// Whether `name` (of the same form) reaches into this excluded
    /// subtree: inside it, or (a wildcard) covering a name inside it, or
    /// (a URI without a host) not known to stay out of it.
    fn excludes(&self, name: &PresentedName) -> bool {
        match (self, name) {
            (Subtree::Dns(domain), PresentedName::Dns(host)) if name_is_wildcard(name) => {
                let base = host.strip_prefix("*.").unwrap_or(host);
                let domain = domain.strip_prefix('.').unwrap_or(domain);
                // `*.b` covers `x.b`: it reaches `domain` when `domain` is
                // `b`, below `b` by one label, or above `b`.
                in_domain(base, domain)
                    || domain
                        .strip_suffix(base)
                        .and_then(|head| head.strip_suffix('.'))
                        .is_some_and(|label| !label.contains('.'))
                    || domain.is_empty()
            }
            (Subtree::UriHost(_), PresentedName::Uri(uri)) if uri_host(uri).is_none() => true,
            _ => self.permits(name),
        }
    }

    /// Whether every name `inner` covers is also in this subtree (both of
    /// one form), for a sub-CA's own permitted subtrees.
    fn covers(&self, inner: &Subtree) -> bool {
        match (self, inner) {
            (Subtree::Dns(outer), Subtree::Dns(inner)) => {
                // `.d` (imported only) is the names strictly below `d`.
                let (outer_base, outer_below) = (
                    outer.strip_prefix('.').unwrap_or(outer),
                    outer.starts_with('.'),
                );
                let (inner_base, inner_below) = (
                    inner.strip_prefix('.').unwrap_or(inner),
                    inner.starts_with('.'),
                );
                outer_base.is_empty()
                    || (in_domain(inner_base, outer_base)
                        && (!outer_below || inner_below || inner_base != outer_base))
            }
            (Subtree::Ip(outer), Subtree::Ip(inner)) => outer.covers(inner),
            (Subtree::Email(outer), Subtree::Email(inner))
            | (Subtree::UriHost(outer), Subtree::UriHost(inner)) => {
                if outer.contains('@') {
                    return outer == inner;
                }
                let inner_host = inner.rsplit_once('@').map_or(inner.as_str(), |(_, h)| h);
                match (outer.strip_prefix('.'), inner_host.strip_prefix('.')) {
                    // `.a` covers `.b.a`, `.a`, and hosts below `a`.
                    (Some(domain), Some(inner_domain)) => in_domain(inner_domain, domain),
                    (Some(_), None) => host_matches(inner_host, outer, false),
                    // One host covers only itself (and its mailboxes).
                    (None, Some(_)) => false,
                    (None, None) => inner_host == outer,
                }
            }
            (Subtree::DirectoryName(outer), Subtree::DirectoryName(inner)) => {
                name_begins_with(inner, outer)
            }
            _ => false,
        }
    }
}

fn name_is_wildcard(name: &PresentedName) -> bool {
    matches!(name, PresentedName::Dns(host) if host.starts_with("*."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constraints(permitted: &[NameSubtree], excluded: &[NameSubtree]) -> NameConstraints {
        NameConstraints::from_request(permitted, excluded)
            .expect("valid")
            .expect("not empty")
    }

    fn dns(name: &str) -> PresentedName {
        PresentedName::Dns(name.into())
    }

    fn subject(text: &str) -> PresentedName {
        PresentedName::DirectoryName(
            DistinguishedName::parse(text)
                .expect("dn")
                .to_name()
                .expect("name"),
        )
    }

    #[test]
    fn dns_subtrees_match_at_label_boundaries() {
        let c = constraints(&[NameSubtree::Dns("Example.COM.".into())], &[]);
        assert_eq!(c.permitted, vec![Subtree::Dns("example.com".into())]);
        assert!(c.violation(&dns("example.com")).is_none());
        assert!(c.violation(&dns("a.b.example.com")).is_none());
        assert!(c.violation(&dns("*.example.com")).is_none());
        let bad = c.violation(&dns("badexample.com")).expect("refused");
        assert!(
            bad.contains("badexample.com") && bad.contains("DNS:example.com"),
            "{bad}"
        );
        assert!(c.violation(&dns("example.org")).is_some());
        // Other forms are not constrained by a DNS subtree.
        assert!(
            c.violation(&PresentedName::Ip("10.0.0.1".parse().unwrap()))
                .is_none()
        );
    }

    #[test]
    fn excluded_wins_and_wildcards_cannot_reach_into_it() {
        let c = constraints(
            &[NameSubtree::Dns("example.com".into())],
            &[NameSubtree::Dns("secret.example.com".into())],
        );
        let hit = c
            .violation(&dns("db.secret.example.com"))
            .expect("excluded");
        assert!(
            hit.contains("excluded subtree DNS:secret.example.com"),
            "{hit}"
        );
        assert!(c.violation(&dns("*.example.com")).is_some());
        assert!(c.violation(&dns("*.secret.example.com")).is_some());
        assert!(c.violation(&dns("*.www.example.com")).is_none());
    }

    #[test]
    fn ip_ranges_match_only_their_family() {
        let c = constraints(
            &[
                NameSubtree::Ip("10.0.0.0/8".into()),
                NameSubtree::Ip("2001:db8::/32".into()),
            ],
            &[NameSubtree::Ip("10.9.0.0/16".into())],
        );
        let ip = |t: &str| PresentedName::Ip(t.parse().unwrap());
        assert!(c.violation(&ip("10.1.2.3")).is_none());
        assert!(c.violation(&ip("2001:db8::1")).is_none());
        assert!(c.violation(&ip("10.9.1.1")).is_some());
        assert!(c.violation(&ip("11.0.0.1")).is_some());
        assert!(c.violation(&ip("::ffff:10.1.2.3")).is_some());
        let round = NameConstraints::of_extensions(&[c.to_extension().unwrap()])
            .unwrap()
            .unwrap();
        assert_eq!(round, c);
    }

    #[test]
    fn email_forms() {
        let c = constraints(
            &[
                NameSubtree::Email("ops@example.com".into()),
                NameSubtree::Email("mail.example.org".into()),
                NameSubtree::Email(".example.net".into()),
            ],
            &[],
        );
        let mail = |t: &str| PresentedName::Email(t.into());
        assert!(c.violation(&mail("ops@example.com")).is_none());
        assert!(c.violation(&mail("dev@example.com")).is_some());
        assert!(c.violation(&mail("anyone@mail.example.org")).is_none());
        assert!(c.violation(&mail("anyone@sub.mail.example.org")).is_some());
        assert!(c.violation(&mail("x@a.example.net")).is_none());
        assert!(c.violation(&mail("x@example.net")).is_some());
    }

    #[test]
    fn uri_hosts_and_directory_names() {
        let c = constraints(
            &[
                NameSubtree::Uri(".example.com".into()),
                NameSubtree::DirectoryName("O=Example,C=US".into()),
            ],
            &[NameSubtree::Uri("evil.example.com".into())],
        );
        let uri = |t: &str| PresentedName::Uri(t.into());
        assert!(
            c.violation(&uri("https://api.example.com:8443/x"))
                .is_none()
        );
        assert!(c.violation(&uri("https://example.com/")).is_some());
        assert!(c.violation(&uri("https://evil.example.com/")).is_some());
        assert!(c.violation(&uri("urn:uuid:1234")).is_some());
        assert!(
            c.violation(&subject("CN=web,OU=Ops,O=example,C=US"))
                .is_none()
        );
        assert!(c.violation(&subject("CN=web,O=Other,C=US")).is_some());
        let round = NameConstraints::of_extensions(&[c.to_extension().unwrap()])
            .unwrap()
            .unwrap();
        assert!(round.violation(&subject("CN=web,O=Example,C=US")).is_none());
    }

    #[test]
    fn bad_entries_are_named() {
        for (subtree, field) in [
            (
                NameSubtree::Dns("*.example.com".into()),
                "permitted_subtrees[1]",
            ),
            (
                NameSubtree::Dns(".example.com".into()),
                "permitted_subtrees[1]",
            ),
            (
                NameSubtree::Ip("10.0.0.1/8".into()),
                "permitted_subtrees[1]",
            ),
            (NameSubtree::Ip("10.0.0.0".into()), "permitted_subtrees[1]"),
            (
                NameSubtree::Email("@example.com".into()),
                "permitted_subtrees[1]",
            ),
            (
                NameSubtree::Uri("https://example.com".into()),
                "permitted_subtrees[1]",
            ),
            (
                NameSubtree::DirectoryName("XX=1".into()),
                "permitted_subtrees[1]",
            ),
        ] {
            let err = NameConstraints::from_request(
                &[NameSubtree::Dns("ok.example".into()), subtree.clone()],
                &[],
            )
            .expect_err("refused");
            match err {
                Error::InvalidInput { field: f, .. } => assert_eq!(f, field, "{subtree:?}"),
                other => panic!("{subtree:?}: {other}"),
            }
        }
    }

    #[test]
    fn sub_ca_subtrees_must_stay_inside() {
        let c = constraints(
            &[
                NameSubtree::Dns("example.com".into()),
                NameSubtree::Ip("10.0.0.0/8".into()),
            ],
            &[NameSubtree::Dns("secret.example.com".into())],
        );
        let sub = |s: NameSubtree| s.checked().unwrap();
        assert!(
            c.escape(&sub(NameSubtree::Dns("a.example.com".into())))
                .is_none()
        );
        assert!(
            c.escape(&sub(NameSubtree::Dns("example.org".into())))
                .is_some()
        );
        assert!(
            c.escape(&sub(NameSubtree::Dns("x.secret.example.com".into())))
                .is_some()
        );
        assert!(
            c.escape(&sub(NameSubtree::Ip("10.1.0.0/16".into())))
                .is_none()
        );
        assert!(
            c.escape(&sub(NameSubtree::Ip("0.0.0.0/0".into())))
                .is_some()
        );
        // A form the parent leaves open stays open.
        assert!(
            c.escape(&sub(NameSubtree::Email("example.org".into())))
                .is_none()
        );
    }
}
