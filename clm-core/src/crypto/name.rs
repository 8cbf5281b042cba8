//! Distinguished names: the flat form clm stores and edits, its X.501
//! encoding, and RFC 4514 strings.

use std::fmt::Write as _;

use der::asn1::{Any, Ia5StringRef, ObjectIdentifier, PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Tag, Tagged};
use serde::{Deserialize, Serialize};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::pkix::oid;
use crate::{Error, Result};

/// A subject or issuer name with the attributes clm issues. Empty strings
/// count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DistinguishedName {
    /// CN, at most 64 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// O, at most 64 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// OU, at most 64 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizational_unit: Option<String>,
    /// ISO 3166 two-letter code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// ST (state or province), at most 128 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// L (locality, city), at most 128 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// emailAddress (ASCII), at most 255 characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// How each field is encoded: (field, RFC 4514 key, OID, upper bound from
/// RFC 5280 Appendix A, string type). Listed in X.501 order (most
/// significant first); RFC 4514 strings print them reversed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StringKind {
    Utf8,
    Printable,
    Ia5,
}

const ATTRIBUTES: [(&str, &str, ObjectIdentifier, usize, StringKind); 7] = [
    ("country", "C", oid::C, 2, StringKind::Printable),
    ("state", "ST", oid::ST, 128, StringKind::Utf8),
    ("locality", "L", oid::L, 128, StringKind::Utf8),
    ("organization", "O", oid::O, 64, StringKind::Utf8),
    ("organizational_unit", "OU", oid::OU, 64, StringKind::Utf8),
    ("common_name", "CN", oid::CN, 64, StringKind::Utf8),
    (
        "email",
        "emailAddress",
        oid::EMAIL_ADDRESS,
        255,
        StringKind::Ia5,
    ),
];

/// RFC 4514 short names (plus the common OpenSSL ones) for printing.
const SHORT_NAMES: [(ObjectIdentifier, &str); 16] = [
    (oid::CN, "CN"),
    (oid::C, "C"),
    (oid::L, "L"),
    (oid::ST, "ST"),
    (oid::STREET, "STREET"),
    (oid::O, "O"),
    (oid::OU, "OU"),
    (oid::DC, "DC"),
    (oid::UID, "UID"),
    (oid::EMAIL_ADDRESS, "emailAddress"),
    (oid::SERIAL_NUMBER, "serialNumber"),
    (oid::SURNAME, "SN"),
    (oid::GIVEN_NAME, "GN"),
    (oid::TITLE, "title"),
    (oid::POSTAL_CODE, "postalCode"),
    (oid::ORGANIZATION_IDENTIFIER, "organizationIdentifier"),
];

impl DistinguishedName {
    /// A name with only a common name.
    pub fn common_name(cn: impl Into<String>) -> Self {
        DistinguishedName {
            common_name: Some(cn.into()),
            ..Default::default()
        }
    }

    fn field(&self, name: &str) -> Option<&str> {
        let value = match name {
            "common_name" => &self.common_name,
            "organization" => &self.organization,
            "organizational_unit" => &self.organizational_unit,
            "country" => &self.country,
            "state" => &self.state,
            "locality" => &self.locality,
            "email" => &self.email,
            _ => &None,
        };
        value.as_deref().filter(|v| !v.is_empty())
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        match name {
            "common_name" => Some(&mut self.common_name),
            "organization" => Some(&mut self.organization),
            "organizational_unit" => Some(&mut self.organizational_unit),
            "country" => Some(&mut self.country),
            "state" => Some(&mut self.state),
            "locality" => Some(&mut self.locality),
            "email" => Some(&mut self.email),
            _ => None,
        }
    }

    /// True when no attribute is set.
    pub fn is_empty(&self) -> bool {
        ATTRIBUTES
            .iter()
            .all(|(field, ..)| self.field(field).is_none())
    }

    /// Checks lengths and character sets; errors name the field as
    /// `subject.common_name` etc.
    pub fn validate(&self) -> Result<()> {
        for (field, _, _, max, kind) in ATTRIBUTES {
            let Some(value) = self.field(field) else {
                continue;
            };
            let name = format!("subject.{field}");
            if value.chars().count() > max {
                return Err(Error::invalid(
                    name,
                    format!("longer than {max} characters (RFC 5280 upper bound)"),
                ));
            }
            if value.chars().any(char::is_control) {
                return Err(Error::invalid(name, "contains control characters"));
            }
            match kind {
                StringKind::Printable
                    if !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())) =>
                {
                    return Err(Error::invalid(
                        name,
                        format!(
                            "{value:?} is not a two-letter ISO 3166 country code such as \"US\""
                        ),
                    ));
                }
                StringKind::Ia5 if !value.is_ascii() => {
                    return Err(Error::invalid(name, "must be ASCII"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The X.501 `Name`, attributes in the order C, ST, L, O, OU, CN,
    /// emailAddress, one attribute per RDN.
    pub fn to_name(&self) -> Result<Name> {
        self.validate()?;
        let mut rdns = RdnSequence::default();
        for (field, _, attribute, _, kind) in ATTRIBUTES {
            let Some(value) = self.field(field) else {
                continue;
            };
            let error =
                |err: der::Error| Error::invalid(format!("subject.{field}"), err.to_string());
            let value = match kind {
                StringKind::Utf8 => Any::encode_from(&Utf8StringRef::new(value).map_err(error)?),
                StringKind::Printable => {
                    Any::encode_from(&PrintableStringRef::new(value).map_err(error)?)
                }
                StringKind::Ia5 => Any::encode_from(&Ia5StringRef::new(value).map_err(error)?),
            }
            .map_err(error)?;
            let rdn = RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue {
                oid: attribute,
                value,
            }])
            .map_err(error)?;
            rdns.push(rdn);
        }
        // `Name` has no public constructor from an RdnSequence; its DER is the same.
        let der = rdns
            .to_der()
            .map_err(|err| Error::invalid("subject", err.to_string()))?;
        Name::from_der(&der).map_err(|err| Error::invalid("subject", err.to_string()))
    }

    /// DER of [`to_name`](Self::to_name).
    pub fn to_der(&self) -> Result<Vec<u8>> {
        self.to_name()?
            .to_der()
            .map_err(|err| Error::invalid("subject", err.to_string()))
    }

    /// Best-effort flat view of any name: the first value of each known
    /// attribute; other attributes are dropped (the full name stays
    /// available as an RFC 4514 string via [`format_name`]).
    pub fn from_name(name: &Name) -> Self {
        let mut out = DistinguishedName::default();
        for atv in name.iter() {
            let Some((field, ..)) = ATTRIBUTES.iter().find(|(_, _, o, _, _)| *o == atv.oid) else {
                continue;
            };
            let Some(value) = attribute_text(&atv.value) else {
                continue;
            };
            if let Some(slot) = out.field_mut(field)
                && slot.is_none()
            {
                *slot = Some(value);
            }
        }
        out
    }

    /// RFC 4514 string, most specific first: `CN=server.example.com,O=Example`.
    pub fn to_rfc4514(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        for (field, key, ..) in ATTRIBUTES.iter().rev() {
            if let Some(value) = self.field(field) {
                parts.push(format!("{key}={}", escape_value(value)));
            }
        }
        parts.join(",")
    }

    /// Parses an RFC 4514-style string such as `CN=a,O=b\, Inc.,C=US`.
    /// Keys are case-insensitive: CN, O, OU, C, ST (or S), L, emailAddress
    /// (or E, EMAIL). `+` joins attributes like `,` does (the flat form has
    /// no multi-valued RDNs). Unknown keys and repeated keys are errors.
    pub fn parse(text: &str) -> Result<Self> {
        let mut out = DistinguishedName::default();
        for part in split_unescaped(text)? {
            let (key, raw_value) = part
                .split_once('=')
                .ok_or_else(|| Error::invalid("subject", format!("{part:?} is not KEY=value")))?;
            let key = key.trim();
            let field = match key.to_ascii_uppercase().as_str() {
                "CN" => "common_name",
                "O" => "organization",
                "OU" => "organizational_unit",
                "C" => "country",
                "ST" | "S" => "state",
                "L" => "locality",
                "EMAILADDRESS" | "E" | "EMAIL" => "email",
                _ => {
                    return Err(Error::invalid(
                        "subject",
                        format!(
                            "unknown attribute {key:?}; known: CN, O, OU, C, ST, L, emailAddress"
                        ),
                    ));
                }
            };
            let value = unescape_value(raw_value)?;
            let slot = out
                .field_mut(field)
                .ok_or_else(|| Error::invalid("subject", format!("unknown attribute {key:?}")))?;
            if slot.is_some() {
                return Err(Error::invalid(
                    "subject",
                    format!("attribute {key} appears twice"),
                ));
            }
            *slot = Some(value);
        }
        out.validate()?;
        Ok(out)
    }
}

/// RFC 4514 string of any X.501 name, most specific RDN first. Unknown
/// attribute types print as dotted OIDs; values that are not strings print
/// as `#` and their DER in hex.
pub fn format_name(name: &Name) -> String {
    let mut out = String::new();
    for (index, rdn) in name
        .iter_rdn()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .enumerate()
    {
        if index > 0 {
            out.push(',');
        }
        for (position, atv) in rdn.iter().enumerate() {
            if position > 0 {
                out.push('+');
            }
            match SHORT_NAMES.iter().find(|(o, _)| *o == atv.oid) {
                Some((_, short)) => out.push_str(short),
                None => out.push_str(&atv.oid.to_string()),
            }
            out.push('=');
            match attribute_text(&atv.value) {
                Some(text) => out.push_str(&escape_value(&text)),
                None => {
                    out.push('#');
                    let mut der = atv.value.to_der().unwrap_or_default();
                    // The certificate's own tag, not its stand-in.
                    if let Some(first) =
                        der.first_mut().filter(|b| **b == UNIVERSAL_STRING_STAND_IN)
                    {
                        *first = 0x1c;
                    }
                    for byte in der {
                        let _ = write!(out, "{byte:02x}");
                    }
                }
            }
        }
    }
    out
}

/// The common name of any name (first CN attribute), if it is a string.
pub(crate) fn common_name_of(name: &Name) -> Option<String> {
    name.iter()
        .find(|atv| atv.oid == oid::CN)
        .and_then(|atv| attribute_text(&atv.value))
}

/// The tag an imported name's UniversalString (universal 28, UTF-32BE) is
/// read under: private, primitive, number 28. The der crate knows no
/// UniversalString and refuses the whole certificate otherwise; no name
/// attribute of a real certificate uses a private tag.
pub(crate) const UNIVERSAL_STRING_STAND_IN: u8 = 0xc0 | 0x1c;

/// Decodes the directory string types used in names.
pub(crate) fn attribute_text(value: &Any) -> Option<String> {
    let bytes = value.value();
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => std::str::from_utf8(bytes).ok().map(str::to_string),
        // T.61 in theory; Latin-1 in every certificate that uses it.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::Private {
            constructed: false,
            number,
        } if number.value() == u32::from(UNIVERSAL_STRING_STAND_IN & 0x1f) => {
            if !bytes.len().is_multiple_of(4) {
                return None;
            }
            bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 4514 §2.4 escaping.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (index, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if index == 0 => out.push_str("\\#"),
            ' ' if index == 0 || index == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Splits on unescaped `,` and `+`, keeping escapes for [`unescape_value`].
fn split_unescaped(text: &str) -> Result<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '+' => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if escaped {
        return Err(Error::invalid("subject", "ends with a lone backslash"));
    }
    parts.push(&text[start..]);
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    if parts.iter().any(|p| p.trim().is_empty()) {
        return Err(Error::invalid(
            "subject",
            "has an empty attribute (doubled or trailing separator)",
        ));
    }
    Ok(parts)
}

fn unescape_value(raw: &str) -> Result<String> {
    // Unescaped surrounding spaces (U+0020, RFC 4514 §3) are not part of
    // the value; other Unicode spaces are, as `escape_value` leaves them.
    let trimmed_start = raw.trim_start_matches(' ');
    if trimmed_start.starts_with('#') {
        return Err(Error::invalid(
            "subject",
            "hex-encoded (#...) values are not supported",
        ));
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut chars = trimmed_start.char_indices().peekable();
    let mut significant_len = 0;
    while let Some((_, c)) = chars.next() {
        if c == '\\' {
            let Some((_, next)) = chars.next() else {
                return Err(Error::invalid("subject", "ends with a lone backslash"));
            };
            if next.is_ascii_hexdigit() {
                let Some((_, low)) = chars.next().filter(|(_, l)| l.is_ascii_hexdigit()) else {
                    return Err(Error::invalid(
                        "subject",
                        "\\ must be followed by a special character or two hex digits",
                    ));
                };
                let pair = [next as u8, low as u8];
                let text = std::str::from_utf8(&pair).unwrap_or("00");
                let byte = u8::from_str_radix(text, 16)
                    .map_err(|_| Error::invalid("subject", "bad hex escape"))?;
                bytes.push(byte);
            } else {
                let mut buffer = [0u8; 4];
                bytes.extend_from_slice(next.encode_utf8(&mut buffer).as_bytes());
            }
            significant_len = bytes.len();
        } else {
            let mut buffer = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            if c != ' ' {
                significant_len = bytes.len();
            }
        }
    }
    bytes.truncate(significant_len);
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid("subject", "escaped bytes are not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> DistinguishedName {
        DistinguishedName {
            common_name: Some("server.example.com".into()),
            organization: Some("Example, Inc.".into()),
            organizational_unit: Some("Ops+Dev".into()),
            country: Some("US".into()),
            state: Some("California".into()),
            locality: Some("San José".into()),
            email: Some("ops@example.com".into()),
        }
    }

    #[test]
    fn unicode_spaces_survive_rfc4514_text() {
        // Found by round_trip_tests: a leading U+00A0 was trimmed away.
        for value in ["\u{a0}", "\u{a0}Example", "\u{3000}x\u{3000}", "\u{2028}y"] {
            let name = DistinguishedName {
                organization: Some(value.into()),
                ..Default::default()
            };
            name.validate().unwrap();
            let text = name.to_rfc4514();
            assert_eq!(DistinguishedName::parse(&text).unwrap(), name, "{text:?}");
        }
    }

    #[test]
    fn rfc4514_round_trip() {
        let dn = full();
        let text = dn.to_rfc4514();
        assert_eq!(
            text,
            "emailAddress=ops@example.com,CN=server.example.com,OU=Ops\\+Dev,O=Example\\, Inc.,L=San José,ST=California,C=US"
        );
        assert_eq!(DistinguishedName::parse(&text).unwrap(), dn);
        let name = dn.to_name().unwrap();
        assert_eq!(format_name(&name), text);
        assert_eq!(DistinguishedName::from_name(&name), dn);
        assert_eq!(common_name_of(&name).as_deref(), Some("server.example.com"));
        let simple = DistinguishedName::parse("CN=server.example.com, O=Example").unwrap();
        assert_eq!(simple.to_rfc4514(), "CN=server.example.com,O=Example");
        assert_eq!(
            DistinguishedName::parse("cn=a\\2Cb ,  o = x\\ ")
                .unwrap()
                .organization
                .as_deref(),
            Some("x ")
        );
        assert_eq!(
            DistinguishedName::parse("cn=a\\2Cb")
                .unwrap()
                .common_name
                .as_deref(),
            Some("a,b")
        );
        assert_eq!(
            DistinguishedName::parse("").unwrap(),
            DistinguishedName::default()
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in [
            "CN",
            "X=1",
            "CN=a,CN=b",
            "CN=a,,O=b",
            "CN=a\\",
            "C=USA",
            "C=us",
            "CN=#0403",
            "CN=a\\4",
        ] {
            let err = DistinguishedName::parse(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid subject"),
                "{bad}: {err}"
            );
        }
        let long = DistinguishedName::common_name("a".repeat(65));
        assert!(
            long.to_name()
                .unwrap_err()
                .to_string()
                .contains("subject.common_name")
        );
        let email = DistinguishedName {
            email: Some("é@x".into()),
            ..Default::default()
        };
        assert!(email.to_name().is_err());
    }

    #[test]
    fn empty_strings_are_absent() {
        let dn = DistinguishedName {
            common_name: Some(String::new()),
            ..Default::default()
        };
        assert!(dn.is_empty());
        assert!(dn.to_name().unwrap().is_empty());
        let json = serde_json::to_string(&DistinguishedName::common_name("x")).unwrap();
        assert_eq!(json, r#"{"common_name":"x"}"#);
        let back: DistinguishedName =
            serde_json::from_str(r#"{"common_name":"x","country":"DE"}"#).unwrap();
        assert_eq!(back.country.as_deref(), Some("DE"));
    }
}
