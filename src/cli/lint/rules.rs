//! The catalogue of checks: stable ids for the JSON and SARIF output and for
//! `akv-csi-provider/lint-ignore`, and the help text code-scanning UIs show.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    Yaml,
    Mount,
    Placeholder,
    Parameters,
    Objects,
    Resource,
    Spelling,
    Deprecated,
    Volume,
    MissingClass,
    SecretSync,
    SecretConsumer,
    Identity,
}

impl Rule {
    pub const ALL: [Rule; 13] = [
        Rule::Yaml,
        Rule::Mount,
        Rule::Placeholder,
        Rule::Parameters,
        Rule::Objects,
        Rule::Resource,
        Rule::Spelling,
        Rule::Deprecated,
        Rule::Volume,
        Rule::MissingClass,
        Rule::SecretSync,
        Rule::SecretConsumer,
        Rule::Identity,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::Yaml => "yaml",
            Rule::Mount => "mount",
            Rule::Placeholder => "placeholder",
            Rule::Parameters => "parameters",
            Rule::Objects => "objects",
            Rule::Resource => "resource",
            Rule::Spelling => "spelling",
            Rule::Deprecated => "deprecated",
            Rule::Volume => "volume",
            Rule::MissingClass => "missing-class",
            Rule::SecretSync => "secret-sync",
            Rule::SecretConsumer => "secret-consumer",
            Rule::Identity => "identity",
        }
    }

    /// One line: what the rule finds.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::Yaml => "YAML that does not parse",
            Rule::Mount => "A mount of this volume would fail",
            Rule::Placeholder => "A value left as a placeholder",
            Rule::Parameters => {
                "SecretProviderClass parameters that are misspelt, unknown or not strings"
            }
            Rule::Objects => "Objects whose files collide, or that write nothing as expected",
            Rule::Resource => {
                "A resource the driver or Kubernetes cannot use, or fields they ignore"
            }
            Rule::Spelling => "A near miss of a kind, API group, provider, driver or field name",
            Rule::Deprecated => "Deprecated API versions, parameters and identity modes",
            Rule::Volume => "A CSI volume the driver refuses or the kubelet never mounts",
            Rule::MissingClass => {
                "A volume names a SecretProviderClass that is not among the documents"
            }
            Rule::SecretSync => "secretObjects that cannot produce the Secret meant",
            Rule::SecretConsumer => {
                "A Secret read from secretObjects that is never created or lacks the key"
            }
            Rule::Identity => "The identity of a volume does not match its pod or credentials",
        }
    }

    /// What the rule checks, why, and what to change.
    pub fn help(self) -> &'static str {
        match self {
            Rule::Yaml => "The document cannot be parsed, so kubectl cannot apply it; the other documents are still checked. Fix the syntax at the line and column given.",
            Rule::Mount => "The provider would refuse this SecretProviderClass (or this volume's use of it) on every mount, with the message shown: the pod would stay in ContainerCreating. The check runs the provider's own validation. Fix the field named.",
            Rule::Placeholder => "A value such as ${TENANT_ID}, <tenant-id>, {{ .Values.x }}, [REDACTED], ...... or xxxxxxxx-xxxx-… was left from a tutorial, an unrendered template or an issue report. The provider refuses it on mount. Put the real value there.",
            Rule::Parameters => "Parameter names are case-sensitive and values must be strings: a misspelt name is ignored by the provider, an unquoted true or number is refused by Kubernetes. Use the spelling given, quote values.",
            Rule::Objects => "Two objects write the same file (the driver keeps one), jsonOnly has no effect because objectAlias is set, or the objects array is empty. Give each object its own objectAlias, remove what has no effect.",
            Rule::Resource => "A required field of the resource is missing or has the wrong shape (no name, no provider, parameters that are not a map), or a field is unknown and ignored (by Kubernetes, or by the provider inside objects). Add or remove it as shown.",
            Rule::Spelling => "Kubernetes and the driver match kinds, API groups, provider names, CSI driver names and field names exactly; a near miss is not found or silently dropped. Use the spelling given.",
            Rule::Deprecated => "An API version, parameter or identity mode that is deprecated or removed. Move to what the message names. A resource can accept a deprecated use with the annotation akv-csi-provider/lint-ignore: deprecated.",
            Rule::Volume => "The driver refuses a volume without readOnly: true or without a secretProviderClass attribute, and the kubelet does not mount a volume no container lists in volumeMounts (the driver is never called). Fix the volume as shown.",
            Rule::MissingClass => "The volume's SecretProviderClass was not among the linted documents, or is in another namespace (the driver looks it up in the pod's namespace). Lint it together with its workloads, or create it in the pod's namespace. With --strict an absent class is an error.",
            Rule::SecretSync => "The driver copies mounted files into Kubernetes Secrets as secretObjects say: the type must be one Kubernetes knows, the keys those the type requires, and objectName a file this SecretProviderClass writes. Otherwise the Secret is wrong or never created.",
            Rule::SecretConsumer => "A Secret produced by secretObjects exists only while a pod mounts the SecretProviderClass volume through a container's volumeMounts; a workload or Ingress that reads it otherwise finds nothing (the Secret is never created), and a key that secretObjects does not list is missing. Mount the volume in the consuming workload and read only listed keys.",
            Rule::Identity => "The identity parameters must match the pods using the class: aad-pod-identity needs the aadpodidbinding label on the pod, workload identity the service account federated with clientID, a service principal a nodePublishSecretRef Secret with clientid and clientsecret. Fix the resource named.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_kebab_case() {
        let ids: std::collections::BTreeSet<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), Rule::ALL.len());
        assert!(ids
            .iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')));
    }
}
