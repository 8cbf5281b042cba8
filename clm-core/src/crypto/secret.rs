//! Secret material wrappers: wiped from memory on drop, never printed.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes (a private key's DER, a data-encryption key, a decrypted
/// plaintext). Wiped on drop; `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when this is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// Copies `bytes`; the caller remains responsible for wiping its own copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes::new(bytes.to_vec())
    }

    /// The secret itself. Named so that every use is visible in review.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        SecretBytes::new(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secret text (a PEM private key, a password, a token). Wiped on drop;
/// `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of `text`; it is wiped when this is dropped.
    pub fn new(text: String) -> Self {
        SecretString(Zeroizing::new(text))
    }

    /// The secret itself. Named so that every use is visible in review.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(text: String) -> Self {
        SecretString::new(text)
    }
}

impl From<&str> for SecretString {
    fn from(text: &str) -> Self {
        SecretString::new(text.to_string())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Secrets arrive from the bindings as JSON text and move straight in.
impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(SecretString::new)
    }
}

/// Text that is written, never read back (`writeOnly`), marked secret so
/// the bindings redact it from their `repr`s.
impl schemars::JsonSchema for SecretString {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretString".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "writeOnly": true, "x-secret": true})
    }
}

/// `n` bytes from the operating system's CSPRNG.
///
/// Panics only if the OS has no usable entropy source, which no caller can
/// recover from (the same policy as `rand` and `ring`).
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    bytes
}

/// Fills `buffer` from the operating system's CSPRNG.
pub fn fill_random(buffer: &mut [u8]) {
    use rand::TryRng;
    // SysRng reads getrandom(2) directly: no user-space state to fork or reseed.
    if let Err(err) = rand::rngs::SysRng.try_fill_bytes(buffer) {
        // No entropy means no safe keys, nonces or serials: stop loudly.
        panic!("the operating system's random number generator failed: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let bytes = SecretBytes::new(b"top secret".to_vec());
        let text = SecretString::from("hunter2");
        assert_eq!(
            format!("{bytes:?} {bytes} {text:?} {text}"),
            "[redacted] [redacted] [redacted] [redacted]"
        );
        assert_eq!(bytes.expose(), b"top secret");
        assert_eq!(text.expose(), "hunter2");
    }

    #[test]
    fn random_bytes_differ() {
        let a = random_bytes(32);
        let b = random_bytes(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(random_bytes(0).is_empty());
    }
}
