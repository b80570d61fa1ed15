//! Key Vault's 401 bearer challenge: `WWW-Authenticate: Bearer authorization="…",
//! resource="…"` (or `scope="…"`), turned into the OAuth scope to request, after checking that the
//! challenge's resource belongs to the vault's own domain (as the Azure SDKs do) so a spoofed or
//! misrouted endpoint cannot obtain a token for another resource.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("key vault answered 401 without a Bearer challenge")]
    Missing,
    #[error("key vault's Bearer challenge names no resource or scope")]
    NoResource,
    #[error("challenge resource \"{resource}\" doesn't match the requested domain: {host} asked for a token for another resource, so none is sent (check keyvaultName, cloudName and --resolve)")]
    DomainMismatch { resource: String, host: String },
}

/// Parses the challenge and returns the scope (`<resource>/.default`) if it may be used for
/// `vault_host`.
pub fn scope_for(header: Option<&str>, vault_host: &str) -> Result<String, ChallengeError> {
    let header = header.ok_or(ChallengeError::Missing)?;
    let params = header
        .trim()
        .strip_prefix("Bearer")
        .or_else(|| header.trim().strip_prefix("bearer"))
        .ok_or(ChallengeError::Missing)?;
    let (mut scope, mut resource) = (None, None);
    for (name, value) in parameters(params) {
        match name.to_ascii_lowercase().as_str() {
            "scope" => scope = Some(value),
            "resource" => resource = Some(value),
            _ => {}
        }
    }
    let scope = match (scope, resource) {
        (Some(s), _) if !s.is_empty() => s,
        (_, Some(r)) if !r.is_empty() => format!("{}/.default", r.trim_end_matches('/')),
        _ => return Err(ChallengeError::NoResource),
    };
    let resource = scope.trim_end_matches("/.default");
    let mismatch = || ChallengeError::DomainMismatch {
        resource: resource.to_string(),
        host: vault_host.to_string(),
    };
    let resource_host = Url::parse(resource)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .ok_or_else(mismatch)?;
    let vault_host = vault_host.to_ascii_lowercase();
    if !vault_host.ends_with(&format!(".{resource_host}")) {
        return Err(mismatch());
    }
    let scope = if scope.ends_with("/.default") {
        scope
    } else {
        format!("{scope}/.default")
    };
    Ok(scope)
}

/// `name="value"` pairs separated by commas and/or spaces; values may be unquoted.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start_matches([' ', ',']);
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            let end = after.find([',', ' ']).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((name, value.to_string()));
        rest = tail.trim_start_matches([' ', ',']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_challenge() {
        let h = r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#;
        assert_eq!(
            scope_for(Some(h), "kv1.vault.azure.net").unwrap(),
            "https://vault.azure.net/.default"
        );
    }

    #[test]
    fn scope_challenge_wins() {
        let h = r#"Bearer authorization="https://login.x/t", resource="https://vault.azure.net", scope="https://vault.azure.net/.default""#;
        assert_eq!(
            scope_for(Some(h), "kv1.vault.azure.net").unwrap(),
            "https://vault.azure.net/.default"
        );
        let unquoted = "Bearer authorization=https://login.x/t,resource=https://vault.azure.net/";
        assert_eq!(
            scope_for(Some(unquoted), "kv.vault.azure.net").unwrap(),
            "https://vault.azure.net/.default"
        );
    }

    #[test]
    fn refuses_foreign_resources() {
        let h =
            r#"Bearer authorization="https://login.x/t", resource="https://management.azure.com""#;
        let e = scope_for(Some(h), "kv1.vault.azure.net").unwrap_err();
        assert!(e.to_string().starts_with("challenge resource \"https://management.azure.com\" doesn't match the requested domain"));
        let lookalike = r#"Bearer resource="https://vault.azure.net""#;
        assert!(scope_for(Some(lookalike), "kv1.evilvault.azure.net").is_err());
        assert!(scope_for(Some(lookalike), "vault.azure.net").is_err());
    }

    #[test]
    fn missing_or_malformed() {
        assert_eq!(scope_for(None, "h"), Err(ChallengeError::Missing));
        assert_eq!(
            scope_for(Some("Basic realm=x"), "h"),
            Err(ChallengeError::Missing)
        );
        assert_eq!(
            scope_for(Some("Bearer authorization=\"x\""), "h"),
            Err(ChallengeError::NoResource)
        );
        assert!(scope_for(Some("Bearer resource=\"not a url\""), "a.b").is_err());
        assert!(scope_for(Some("Bearer resource=\"unterminated"), "a.b").is_err());
    }
}
