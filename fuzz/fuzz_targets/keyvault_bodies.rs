//! Key Vault response bodies: secret, key and certificate bundles and version listings.
#![no_main]

use akv_csi_provider::parsers as keyvault;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keyvault::parse_secret(data);
    let _ = keyvault::parse_key(data);
    let _ = keyvault::parse_certificate(data);
    let _ = keyvault::parse_versions(data);
});
