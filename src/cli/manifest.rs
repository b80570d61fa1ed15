//! Kubernetes manifests as `lint` and `mount` read them: the resources of every YAML document
//! (the items of a `kind: List` in their place), and the SecretProviderClasses of this provider
//! among them. One model, so both commands see the same resources.

use std::collections::BTreeMap;

use super::yaml::{self, Document, Node, YamlError};

/// A manifest `mount` cannot use: one of its documents does not parse.
#[derive(Debug, thiserror::Error)]
#[error("document {}: not valid YAML: {}", .0.document, .0)]
pub struct ManifestError(pub YamlError);

/// The kind of the resources this provider serves.
pub const SPC_KIND: &str = "SecretProviderClass";

/// One Kubernetes resource of a manifest.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    /// 1-based index of its YAML document in the file.
    pub document: usize,
    pub node: &'a Node,
    pub kind: &'a str,
    pub api_version: &'a str,
    pub name: &'a str,
    /// `metadata.namespace`; empty when not set, i.e. the namespace kubectl or Helm is given.
    pub namespace: &'a str,
}

impl<'a> Resource<'a> {
    fn new(document: usize, node: &'a Node) -> Resource<'a> {
        let metadata = node.get("metadata");
        let meta = |key| metadata.map(|m| m.str_at(key)).unwrap_or("");
        Resource {
            document,
            node,
            kind: node.str_at("kind"),
            api_version: node.str_at("apiVersion"),
            name: meta("name"),
            namespace: meta("namespace"),
        }
    }

    pub fn spec(&self) -> Option<&'a Node> {
        self.node.get("spec")
    }

    /// `metadata.<map>.<key>` (labels, annotations), if it is a string.
    pub fn metadata(&self, map: &str, key: &str) -> Option<&'a str> {
        self.node.get("metadata")?.get(map)?.get(key)?.as_str()
    }

    /// Whether two resources may be in one namespace: an unset namespace is whatever namespace
    /// the manifest is applied to, so it matches any.
    pub fn shares_namespace(&self, namespace: &str) -> bool {
        self.namespace.is_empty() || namespace.is_empty() || self.namespace == namespace
    }
}

/// The documents of a text, or the first that does not parse.
pub fn documents(text: &str) -> Result<Vec<Document>, ManifestError> {
    yaml::documents(text)
        .into_iter()
        .map(|doc| doc.map_err(ManifestError))
        .collect()
}

/// Every resource of the documents; a `List` (`kubectl get -o yaml`) stands for its items.
pub fn resources(documents: &[Document]) -> Vec<Resource<'_>> {
    let mut out = Vec::new();
    for doc in documents {
        let resource = Resource::new(doc.index, &doc.root);
        match resource.kind.ends_with("List") && resource.node.get("items").is_some() {
            true => out.extend(
                resource
                    .node
                    .items_at("items")
                    .map(|item| Resource::new(doc.index, item)),
            ),
            false => out.push(resource),
        }
    }
    out
}

/// A SecretProviderClass.
#[derive(Debug, Clone, Copy)]
pub struct SecretProviderClass<'a> {
    pub resource: Resource<'a>,
    /// `spec.provider`, if set.
    pub provider: Option<&'a str>,
    /// `spec.parameters`, if it is a mapping.
    pub parameters: Option<&'a Node>,
    /// `spec.secretObjects`, as written.
    pub secret_objects: Option<&'a Node>,
}

impl<'a> SecretProviderClass<'a> {
    /// Reads a resource as a SecretProviderClass, whatever its kind says.
    pub fn of(resource: Resource<'a>) -> SecretProviderClass<'a> {
        let spec = resource.spec();
        SecretProviderClass {
            resource,
            provider: spec.and_then(|s| s.get("provider")).and_then(Node::as_str),
            parameters: spec
                .and_then(|s| s.get("parameters"))
                .filter(|p| matches!(p.value, yaml::Value::Map(_))),
            secret_objects: spec.and_then(|s| s.get("secretObjects")),
        }
    }

    /// For this provider: `provider: azure`, or no provider (which lint reports).
    pub fn is_azure(&self) -> bool {
        self.provider.is_none_or(|p| p == "azure" || p.is_empty())
    }

    /// The string parameters, and the names and texts of those that are not strings.
    pub fn string_parameters(&self) -> (BTreeMap<String, String>, Vec<(String, String)>) {
        let mut strings = BTreeMap::new();
        let mut others = Vec::new();
        for entry in self.parameters.map(Node::entries).unwrap_or(&[]) {
            match entry.value.as_str() {
                Some(s) => {
                    strings.insert(entry.key.clone(), s.to_string());
                }
                None => others.push((
                    entry.key.clone(),
                    entry.value.scalar_text().unwrap_or("…").to_string(),
                )),
            }
        }
        (strings, others)
    }
}

/// The SecretProviderClasses of this provider among the resources.
pub fn secret_provider_classes<'a>(resources: &[Resource<'a>]) -> Vec<SecretProviderClass<'a>> {
    resources
        .iter()
        .filter(|r| r.kind == SPC_KIND)
        .map(|r| SecretProviderClass::of(*r))
        .filter(SecretProviderClass::is_azure)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_azure_classes_only() {
        let text = "kind: SecretProviderClass\nmetadata: {name: a}\nspec:\n  provider: aws\n---\nkind: ConfigMap\n---\n\
                    apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: b, namespace: ns}\nspec:\n  provider: azure\n  parameters:\n    keyvaultName: kv\n    usePodIdentity: true\n";
        let docs = documents(text).unwrap();
        let all = resources(&docs);
        let found = secret_provider_classes(&all);
        assert_eq!(found.len(), 1);
        let b = found[0].resource;
        assert_eq!((b.document, b.name, b.namespace), (3, "b", "ns"));
        let (strings, others) = found[0].string_parameters();
        assert_eq!(strings["keyvaultName"], "kv");
        assert_eq!(others, [("usePodIdentity".to_string(), "true".to_string())]);
        assert!(documents("a: [").is_err());
    }

    #[test]
    fn list_items_are_resources() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: p}\n- kind: Secret\n  metadata: {name: s}\n";
        let docs = documents(text).unwrap();
        let all = resources(&docs);
        assert_eq!(
            all.iter().map(|r| r.kind).collect::<Vec<_>>(),
            ["Pod", "Secret"]
        );
        assert_eq!(all[1].node.pos.line, 6);
    }
}
