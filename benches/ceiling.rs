//! What the signatures alone cost on this machine (ring, the P-256 code clm
//! signs and verifies with), and the rate they cap a run at when they are
//! all the work there is: the benches print it beside their rates, so a
//! target can be held against the hardware. Included with `#[path]`.

use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
};

/// Microseconds per operation on one core.
pub struct P256Costs {
    pub generate_us: f64,
    pub sign_us: f64,
    pub verify_us: f64,
}

/// Runs `op` for about `budget` and returns microseconds per call.
fn per_call(budget: Duration, mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < budget {
        for _ in 0..64 {
            op();
        }
        calls += 64;
    }
    started.elapsed().as_secs_f64() * 1e6 / calls as f64
}

/// Measures key generation, signing and verification, 0.3 s each.
pub fn p256_costs() -> P256Costs {
    let rng = SystemRandom::new();
    let budget = Duration::from_millis(300);
    let generate_us = per_call(budget, || {
        let _ = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng);
    });
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .unwrap_or_else(|err| panic!("P-256 key: {err}"));
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .unwrap_or_else(|err| panic!("P-256 key: {err}"));
    // About a leaf's to-be-signed part.
    let message = [0x5a_u8; 600];
    let sign_us = per_call(budget, || {
        let _ = key.sign(&rng, &message);
    });
    let sig = key
        .sign(&rng, &message)
        .unwrap_or_else(|err| panic!("P-256 signature: {err}"));
    let public = signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key());
    let verify_us = per_call(budget, || {
        if public.verify(&message, sig.as_ref()).is_err() {
            panic!("P-256 signature did not verify");
        }
    });
    P256Costs {
        generate_us,
        sign_us,
        verify_us,
    }
}

impl P256Costs {
    /// One line of the three costs, for a bench's report.
    pub fn describe(&self) -> String {
        format!(
            "P-256 on one core here (ring): key {:.1} us, signature {:.1} us, check {:.1} us",
            self.generate_us, self.sign_us, self.verify_us
        )
    }
}

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Operations per second `cores` cores could do if each took `cost_us` of
/// CPU and nothing else ran.
pub fn cap(cost_us: f64) -> f64 {
    cores() as f64 * 1e6 / cost_us
}
