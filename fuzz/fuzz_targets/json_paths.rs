//! A `jsonPaths` path (first line) applied to a secret's JSON value (the rest).
#![no_main]

use akv_csi_provider::parsers::JsonPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, doc) = text.split_once('\n').unwrap_or((text, "null"));
    let Ok(path) = JsonPath::parse(path) else {
        return;
    };
    if let Ok(doc) = serde_json::from_str::<&serde_json::value::RawValue>(doc) {
        if let Ok(value) = path.select(doc) {
            let _ = akv_csi_provider::parsers::file_contents(value);
        }
    }
});
