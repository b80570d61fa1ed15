//! Certificate material from Key Vault: PFX (as the base64 secret value, and raw bytes, which
//! exercise the PKCS#12 decoder's BER reader, MAC and decryption paths), PEM splitting, chain
//! ordering of arbitrary DER, and JWK public keys. Seeds: the Go provider's PFX fixtures
//! (tests/fixtures/go-provider, decoded).
#![no_main]

use akv_csi_provider::parsers::{chain, jwk, pfx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = pfx::decode(&text, true);
    use base64::Engine;
    let _ = pfx::decode(&base64::engine::general_purpose::STANDARD.encode(data), true);
    let _ = pfx::split_pem(&text);
    let _ = chain::order(data.split(|b| *b == 0xff).map(<[u8]>::to_vec).take(8).collect());
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(data) {
        let _ = jwk::public_key_pem(&map);
    }
});
