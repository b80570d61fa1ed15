//! The AzureStackCloud environment file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = akv_csi_provider::parsers::parse_env_file("fuzz.json", data);
});
