//! Values that are obviously stand-ins, left in a SecretProviderClass copied from a tutorial, a
//! Helm chart that was not rendered, or an issue report with the ids blanked out. Some would
//! otherwise pass every other check (`tenantID: "......"` is a well-formed domain name,
//! `xxxxxxxx-xxxx-…` a well-formed vault name) and fail much later at Entra ID or Key Vault with
//! an error that does not point here.
//!
//! The forms are the ones real templates use. Zero GUIDs (`00000000-0000-…`) are not among them:
//! documentation, this repository's examples included, uses them for ids the reader replaces, and
//! they are valid values.

/// Whether `value` looks like a placeholder rather than a real parameter value.
pub fn is_placeholder(value: &str) -> bool {
    let value = value.trim();
    value.contains("${")
        || value.contains("$(")
        || value.contains("{{")
        || shell_variable(value)
        || value
            .find('<')
            .is_some_and(|open| value[open..].contains('>'))
        || (value.len() > 2 && value.starts_with('[') && value.ends_with(']'))
        || value.eq_ignore_ascii_case("redacted")
        || value.contains("...")
        || value.contains('…')
        || value.contains("***")
        || value
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|part| part.len() >= 3 && part.bytes().all(|b| b == b'x' || b == b'X'))
}

/// `$NAME` anywhere: no parameter value this provider reads contains a `$`.
fn shell_variable(value: &str) -> bool {
    value
        .split('$')
        .skip(1)
        .any(|rest| rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
}

/// What belongs in a parameter or object field, for the error that refuses its placeholder.
pub fn expected(field: &str) -> &'static str {
    match field {
        "keyvaultName" => "the name of the Key Vault (3 to 24 letters, digits and '-')",
        "tenantID" | "tenantId" => {
            "the directory (tenant) id of the vault's Entra ID tenant (a GUID) or its domain name"
        }
        "clientID" => "the client id (a GUID) of the identity the pods authenticate as",
        "userAssignedIdentityID" => "the client id (a GUID) of the user-assigned managed identity",
        "cloudName" => "the cloud's name, e.g. AzurePublicCloud, or remove it",
        "cloudEnvFileName" => "the path of the environment file inside the provider's container",
        "usePodIdentity" | "useVMManagedIdentity" | "useAzureTokenProxy" => "\"true\" or \"false\"",
        "objects" => "the objects to mount (an `array:` of object descriptions)",
        "objectName" => "the name of the secret, key or certificate in Key Vault",
        "objectVersion" => "a 32-character version id, or leave it empty for the latest version",
        "objectAlias" => "the file name to write, or remove it to use objectName",
        _ => "the real value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_from_tutorials_and_issue_reports() {
        for value in [
            "${TENANT_ID}",
            "${IDENTITY_TENANT}",
            "$TENANT_ID",
            "kv-$ENV",
            "$(KEYVAULT_NAME)",
            "<tenant-id>",
            "<your-keyvault-name>",
            "{{ .Values.tenantId }}",
            "[REDACTED]",
            "[tenant id]",
            "REDACTED",
            "......",
            "...",
            "…",
            "****",
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
            "XXXX",
            "xxx.onmicrosoft.com",
        ] {
            assert!(is_placeholder(value), "{value}");
        }
    }

    #[test]
    fn real_values_pass() {
        for value in [
            "00000000-0000-0000-0000-000000000000",
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "contoso.onmicrosoft.com",
            "adfs",
            "kv-example",
            "kv-prod-eastus2",
            "maxx-kv",
            "xx-kv",
            "AzurePublicCloud",
            "/etc/kubernetes/custom_environment.json",
            "../env.json",
            "true",
            "",
            "[",
            "a>b",
        ] {
            assert!(!is_placeholder(value), "{value}");
        }
    }
}
