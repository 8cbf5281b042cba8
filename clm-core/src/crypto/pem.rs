//! PEM (RFC 7468): encoding through `pem-rfc7468`, and a lenient block
//! splitter for reading bundles.
//!
//! Reading stays ours: pem-rfc7468 decodes one document in RFC 7468's strict
//! grammar (one line width throughout, nothing after the END line), while
//! imports meet bundles with text between blocks and base64 wrapped at any
//! width, which RFC 7468 §3 asks parsers to accept.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pem_rfc7468::LineEnding;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The labels clm writes (RFC 7468 §5, §7, §8, §10, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemLabel {
    /// `CERTIFICATE`: an X.509 certificate.
    Certificate,
    /// `CERTIFICATE REQUEST`: a PKCS #10 CSR.
    CertificateRequest,
    /// `X509 CRL`: a certificate revocation list.
    X509Crl,
    /// `PRIVATE KEY`: an unencrypted PKCS #8 private key.
    PrivateKey,
    /// `ENCRYPTED PRIVATE KEY`: a PKCS #8 `EncryptedPrivateKeyInfo`.
    EncryptedPrivateKey,
    /// `PKCS7`: a PKCS #7 / CMS ContentInfo (certs-only bundles).
    Pkcs7,
}

impl PemLabel {
    /// The label as written between `-----BEGIN ` and `-----`.
    pub fn as_str(self) -> &'static str {
        match self {
            PemLabel::Certificate => "CERTIFICATE",
            PemLabel::CertificateRequest => "CERTIFICATE REQUEST",
            PemLabel::X509Crl => "X509 CRL",
            PemLabel::PrivateKey => "PRIVATE KEY",
            PemLabel::EncryptedPrivateKey => "ENCRYPTED PRIVATE KEY",
            PemLabel::Pkcs7 => "PKCS7",
        }
    }
}

/// An RFC 1421 header line of a PEM block: name and value.
pub(crate) type PemHeader = (String, String);

/// One `-----BEGIN LABEL-----` block, decoded. The bytes are wiped on drop
/// because a block may hold a private key.
pub(crate) struct PemBlock {
    pub label: String,
    /// RFC 1421 headers before the base64 (`Proc-Type`, `DEK-Info`: what
    /// OpenSSL writes before a legacy encrypted key).
    pub headers: Vec<PemHeader>,
    pub der: Zeroizing<Vec<u8>>,
}

impl PemBlock {
    /// True for an RFC 1421 encrypted block (`Proc-Type: 4,ENCRYPTED`):
    /// its bytes are ciphertext.
    pub fn is_encrypted(&self) -> bool {
        self.headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED")
        })
    }

    /// The error for a block whose headers its reader cannot use.
    pub fn headers_error(&self, field: &str) -> Error {
        let what = if self.is_encrypted() {
            "is encrypted (RFC 1421 Proc-Type/DEK-Info headers, a legacy encrypted key)"
        } else {
            "has RFC 1421 headers"
        };
        Error::invalid(
            field,
            format!("PEM block {:?} {what}; decrypt it first", self.label),
        )
    }
}

/// Encodes DER as PEM with 64-column lines, LF line ends and a trailing
/// newline. The text is written straight into the returned string, so a
/// private key leaves no unwiped base64 copy behind.
pub fn der_to_pem(label: PemLabel, der: &[u8]) -> String {
    // pem-rfc7468 fails only for an invalid label (ours are all valid, see
    // the tests) or a length past usize::MAX, which no slice in memory has.
    pem_rfc7468::encode_string(label.as_str(), LineEnding::LF, der).unwrap_or_default()
}

/// True when the input contains a PEM armor line.
pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    find(input, b"-----BEGIN ").is_some()
}

/// Splits text into its PEM blocks, in order. Text outside blocks (comments,
/// `openssl x509 -text` output) is ignored. RFC 1421 headers (legacy
/// encrypted keys) are returned with their block, for the caller to refuse
/// or skip it. A block whose base64 or headers are damaged, or whose END line
/// is missing, is an error on `field`.
pub(crate) fn pem_blocks(input: &[u8], field: &str) -> Result<Vec<PemBlock>> {
    let mut blocks = Vec::new();
    let mut rest = input;
    while let Some(start) = find(rest, b"-----BEGIN ") {
        let after_begin = &rest[start + 11..];
        let label_end = find(after_begin, b"-----")
            .ok_or_else(|| Error::invalid(field, "PEM BEGIN line is not terminated"))?;
        let label_bytes = &after_begin[..label_end];
        let label = std::str::from_utf8(label_bytes)
            .ok()
            .filter(|l| l.len() <= 64 && l.bytes().all(|b| b.is_ascii_graphic() || b == b' '))
            .ok_or_else(|| Error::invalid(field, "PEM label is not printable ASCII"))?
            .to_string();
        let body_and_rest = &after_begin[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let body_end = find(body_and_rest, end_marker.as_bytes())
            .ok_or_else(|| Error::invalid(field, format!("PEM block {label:?} has no END line")))?;
        let body = &body_and_rest[..body_end];
        let (headers, base64_part) = split_headers(body).ok_or_else(|| {
            Error::invalid(field, format!("PEM block {label:?} has malformed headers"))
        })?;
        let compact: Zeroizing<Vec<u8>> = Zeroizing::new(
            base64_part
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect(),
        );
        let der = STANDARD.decode(compact.as_slice()).map_err(|err| {
            Error::invalid(
                field,
                format!("PEM block {label:?} is not valid base64: {err}"),
            )
        })?;
        blocks.push(PemBlock {
            label,
            headers,
            der: Zeroizing::new(der),
        });
        rest = &body_and_rest[body_end + end_marker.len()..];
    }
    Ok(blocks)
}

/// Splits a block's body into its RFC 1421 headers (`Name: value` lines,
/// continued on lines that start with a blank, ended by an empty line) and
/// the base64 after them. None when a header is not `Name: value` or a colon
/// shows up in the base64 (base64 has none).
fn split_headers(body: &[u8]) -> Option<(Vec<PemHeader>, &[u8])> {
    let mut headers: Vec<PemHeader> = Vec::new();
    let mut rest = body;
    // The BEGIN line's own end of line.
    while let [b'\r' | b'\n', tail @ ..] = rest {
        rest = tail;
    }
    if !rest.contains(&b':') {
        return Some((headers, rest));
    }
    loop {
        let line_end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = std::str::from_utf8(&rest[..line_end])
            .ok()?
            .trim_end_matches('\r');
        rest = rest.get(line_end.saturating_add(1)..).unwrap_or(&[]);
        if line.trim().is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers.last_mut()?;
            value.push_str(line.trim());
            continue;
        }
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    if headers.is_empty() || rest.contains(&b':') || rest.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some((headers, rest))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes the hand-written encoder produced, kept as the reference:
    /// 64-column lines, LF, a newline after the END line.
    fn reference_pem(label: &str, der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in body.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).unwrap());
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    #[test]
    fn encoding_is_unchanged() {
        for label in [
            PemLabel::Certificate,
            PemLabel::CertificateRequest,
            PemLabel::X509Crl,
            PemLabel::PrivateKey,
            PemLabel::EncryptedPrivateKey,
            PemLabel::Pkcs7,
        ] {
            for len in [1usize, 2, 3, 47, 48, 49, 95, 96, 97, 1000] {
                let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let pem = der_to_pem(label, &der);
                assert_eq!(pem, reference_pem(label.as_str(), &der), "{label:?} {len}");
                let blocks = pem_blocks(pem.as_bytes(), "x").unwrap();
                assert_eq!(blocks[0].label, label.as_str());
                assert_eq!(blocks[0].der.as_slice(), der.as_slice());
            }
        }
    }

    #[test]
    fn lax_wrapping_and_bundles_are_read() {
        let der: Vec<u8> = (0..=255u8).collect();
        let body = STANDARD.encode(&der);
        // 76 columns, CRLF, trailing blanks: what some tools write.
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(76)
            .map(|l| std::str::from_utf8(l).unwrap())
            .collect();
        let lax = format!(
            "-----BEGIN CERTIFICATE-----\r\n{} \r\n-----END CERTIFICATE-----\r\n",
            lines.join(" \r\n")
        );
        let blocks = pem_blocks(lax.as_bytes(), "certificate").unwrap();
        assert_eq!(blocks[0].der.as_slice(), der.as_slice());
        // pem-rfc7468's strict grammar refuses it, which is why reading stays ours.
        assert!(pem_rfc7468::decode_vec(lax.as_bytes()).is_err());
    }

    #[test]
    fn round_trip_and_bundles() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = der_to_pem(PemLabel::Certificate, &der);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")));
        let text = format!(
            "subject=CN=x\n{pem}junk\n{}",
            der_to_pem(PemLabel::PrivateKey, b"abc")
        );
        let blocks = pem_blocks(text.as_bytes(), "certificate").unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der.as_slice(), der.as_slice());
        assert_eq!(blocks[1].label, "PRIVATE KEY");
        assert_eq!(blocks[1].der.as_slice(), b"abc");
    }

    #[test]
    fn legacy_headers_are_kept_with_their_block() {
        let text = "-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\nDEK-Info: AES-128-CBC,\r\n 00112233445566778899AABBCCDDEEFF\r\n\r\nAAECAw==\r\n-----END RSA PRIVATE KEY-----\r\n";
        let blocks = pem_blocks(text.as_bytes(), "private_key").unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            blocks[0].headers,
            vec![
                ("Proc-Type".to_string(), "4,ENCRYPTED".to_string()),
                (
                    "DEK-Info".to_string(),
                    "AES-128-CBC,00112233445566778899AABBCCDDEEFF".to_string()
                ),
            ]
        );
        assert!(blocks[0].is_encrypted());
        assert_eq!(blocks[0].der.as_slice(), &[0, 1, 2, 3]);
        let err = blocks[0].headers_error("private_key").to_string();
        assert!(
            err.contains("encrypted") && err.contains("RSA PRIVATE KEY"),
            "{err}"
        );
        let plain = der_to_pem(PemLabel::Certificate, b"abc");
        assert!(
            pem_blocks(plain.as_bytes(), "x").unwrap()[0]
                .headers
                .is_empty()
        );
    }

    #[test]
    fn damaged_pem_is_an_error() {
        let pem = der_to_pem(PemLabel::Certificate, b"hello world");
        let truncated = &pem[..pem.len() - 10];
        assert!(pem_blocks(truncated.as_bytes(), "certificate").is_err());
        let bad = pem.replace("aGVs", "a*Vs");
        assert!(pem_blocks(bad.as_bytes(), "certificate").is_err());
        // Headers without the empty line that ends them, or a colon in the base64.
        let unterminated = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let err = pem_blocks(unterminated.as_bytes(), "private_key")
            .err()
            .unwrap();
        assert!(err.to_string().contains("malformed headers"), "{err}");
        let colon = "-----BEGIN CERTIFICATE-----\nAA:AA\n-----END CERTIFICATE-----\n";
        assert!(pem_blocks(colon.as_bytes(), "certificate").is_err());
        assert!(pem_blocks(b"-----BEGIN ", "x").is_err());
        assert!(pem_blocks(b"no pem here", "x").unwrap().is_empty());
    }
}
