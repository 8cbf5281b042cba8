//! The sealed-envelope opener (AES-256-GCM with a versioned header and
//! associated data binding the row), as every read of a private key or a
//! secret runs it.
//!
//! Two properties: bytes the fuzzer makes up never open under a key it does
//! not know; and a value clm sealed opens only when nonce, ciphertext,
//! associated data and key version are exactly as sealed: any edit fails.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use clm::crypto::{SecretBytes, aad, open_parts, seal, sealed_key_version};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Made-up bytes opened as they are.
    Forged {
        key_version: u32,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
        aad_parts: Vec<String>,
    },
    /// A real sealed value, then edits.
    Tampered {
        key_version: u32,
        plaintext: Vec<u8>,
        aad_parts: Vec<String>,
        edits: Vec<Edit>,
    },
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Nonce { at: u8, xor: u8 },
    Ciphertext { at: u16, xor: u8 },
    Truncate { keep: u16 },
    Append { byte: u8 },
    Aad { at: u16, xor: u8 },
    Version { xor: u32 },
}

fn key() -> SecretBytes {
    SecretBytes::new(vec![0x5a; 32])
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    match input {
        Input::Forged {
            key_version,
            nonce,
            ciphertext,
            aad_parts,
        } => {
            let _ = sealed_key_version(&ciphertext);
            let parts: Vec<&str> = aad_parts.iter().map(String::as_str).collect();
            let opened = open_parts(&key(), key_version, &nonce, &ciphertext, &aad(&parts));
            assert!(opened.is_err(), "made-up bytes opened");
        }
        Input::Tampered {
            key_version,
            plaintext,
            aad_parts,
            edits,
        } => {
            let parts: Vec<&str> = aad_parts.iter().map(String::as_str).collect();
            let row = aad(&parts);
            let sealed = seal(&key(), key_version, &plaintext, &row).expect("seal");
            assert_eq!(
                sealed_key_version(&sealed.ciphertext).ok(),
                Some(key_version)
            );
            let (mut nonce, mut ciphertext, mut row_aad, mut version) = (
                sealed.nonce.clone(),
                sealed.ciphertext.clone(),
                row.clone(),
                key_version,
            );
            for edit in edits {
                match edit {
                    Edit::Nonce { at, xor } => {
                        let len = nonce.len();
                        if let Some(byte) = nonce.get_mut(usize::from(at) % len.max(1)) {
                            *byte ^= xor;
                        }
                    }
                    Edit::Ciphertext { at, xor } => {
                        let len = ciphertext.len();
                        if let Some(byte) = ciphertext.get_mut(usize::from(at) % len.max(1)) {
                            *byte ^= xor;
                        }
                    }
                    Edit::Truncate { keep } => ciphertext.truncate(usize::from(keep)),
                    Edit::Append { byte } => ciphertext.push(byte),
                    Edit::Aad { at, xor } => {
                        let len = row_aad.len();
                        if let Some(byte) = row_aad.get_mut(usize::from(at) % len.max(1)) {
                            *byte ^= xor;
                        }
                    }
                    Edit::Version { xor } => version ^= xor,
                }
            }
            let unchanged = nonce == sealed.nonce
                && ciphertext == sealed.ciphertext
                && row_aad == row
                && version == key_version;
            match open_parts(&key(), version, &nonce, &ciphertext, &row_aad) {
                Ok(opened) => {
                    assert!(unchanged, "an edited envelope opened");
                    assert_eq!(opened.expose(), plaintext.as_slice());
                }
                Err(err) => assert!(!unchanged, "an untouched envelope did not open: {err}"),
            }
        }
    }
});
