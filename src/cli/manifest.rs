//! SecretProviderClass manifests as `lint` and `mount` read them: every YAML document of a file,
//! and the SecretProviderClasses for this provider among them. One model, so both commands see
//! the same resources.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A manifest that cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("document {document}: not valid YAML: {message}")]
pub struct ManifestError {
    pub document: usize,
    pub message: String,
}

/// A SecretProviderClass with `provider: azure` (or no provider, which lint reports).
#[derive(Debug, Clone, PartialEq)]
pub struct SecretProviderClass {
    /// 1-based index of its YAML document in the file.
    pub document: usize,
    pub api_version: String,
    pub name: String,
    /// `spec.provider`, if set.
    pub provider: Option<String>,
    /// `spec.parameters`, as written (values should be strings), or `None` if absent or not a map.
    pub parameters: Option<serde_json::Map<String, serde_json::Value>>,
    /// `spec.secretObjects`, as written.
    pub secret_objects: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    kind: String,
    #[serde(default, rename = "apiVersion")]
    api_version: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: serde_json::Value,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: String,
}

impl SecretProviderClass {
    /// The string parameters, and the names of those that are not strings.
    pub fn string_parameters(
        &self,
    ) -> (BTreeMap<String, String>, Vec<(String, serde_json::Value)>) {
        let mut strings = BTreeMap::new();
        let mut others = Vec::new();
        for (key, value) in self.parameters.iter().flatten() {
            match value.as_str() {
                Some(s) => {
                    strings.insert(key.clone(), s.to_string());
                }
                None => others.push((key.clone(), value.clone())),
            }
        }
        (strings, others)
    }
}

/// The SecretProviderClasses of this provider in a (multi-document) YAML text; documents of
/// other kinds and SecretProviderClasses of other providers are skipped.
pub fn secret_provider_classes(text: &str) -> Result<Vec<SecretProviderClass>, ManifestError> {
    let mut found = Vec::new();
    for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(document).map_err(|e| ManifestError {
            document: index + 1,
            message: e.to_string(),
        })?;
        let Ok(resource) = serde_json::from_value::<Resource>(value) else {
            continue;
        };
        if resource.kind != "SecretProviderClass" {
            continue;
        }
        let provider = resource
            .spec
            .get("provider")
            .and_then(|p| p.as_str())
            .map(str::to_string);
        if provider
            .as_deref()
            .is_some_and(|p| p != "azure" && !p.is_empty())
        {
            continue;
        }
        found.push(SecretProviderClass {
            document: index + 1,
            api_version: resource.api_version,
            name: resource.metadata.name,
            provider,
            parameters: resource
                .spec
                .get("parameters")
                .and_then(|p| p.as_object())
                .cloned(),
            secret_objects: resource.spec.get("secretObjects").cloned(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_azure_classes_only() {
        let text = "kind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  provider: aws\n---\nkind: ConfigMap\n---\n\
                    apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: b}\nspec:\n  provider: azure\n  parameters:\n    keyvaultName: kv\n    usePodIdentity: true\n";
        let found = secret_provider_classes(text).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].document, found[0].name.as_str()), (3, "b"));
        let (strings, others) = found[0].string_parameters();
        assert_eq!(strings["keyvaultName"], "kv");
        assert_eq!(
            others,
            [("usePodIdentity".to_string(), serde_json::Value::Bool(true))]
        );
        assert!(secret_provider_classes("a: [").is_err());
    }
}
