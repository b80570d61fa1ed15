//! The MountRequest envelope: attributes, secrets and permission JSON (with the service-account
//! tokens, objects YAML and client certificate PEM inside), split from one input at NUL bytes;
//! parsed as a provider with --client-id-from-service-account does when the input's first byte
//! is odd.
#![no_main]

use akv_csi_provider::parsers::{self, CloudName, RequestDefaults};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let attributes = parts.next().unwrap_or("");
    let secrets = parts.next().unwrap_or("null");
    let permission = parts.next().unwrap_or("420");
    let defaults = RequestDefaults {
        cloud: CloudName::parse("AzurePublicCloud").unwrap(),
        cloud_env_file: None,
        client_id_from_service_account: data.first().is_some_and(|b| b % 2 == 1),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let _ = runtime.block_on(parsers::mount_request(attributes, secrets, permission, &defaults));
});
