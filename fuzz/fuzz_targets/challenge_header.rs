//! The `WWW-Authenticate` bearer challenge, against a fixed vault host.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = std::str::from_utf8(data) {
        let _ = akv_csi_provider::parsers::challenge_scope(Some(header), "kv1.vault.azure.net");
    }
});
