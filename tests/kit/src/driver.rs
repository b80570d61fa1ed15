//! An emulator of the Secrets Store CSI driver (v1.6 first mounts, v1.5 rotation calls) and of
//! the Secrets Store Sync Controller, as callers of the provider: it builds MountRequests exactly
//! as they do, validates responses with the driver's rules, writes files with the kubelet's
//! atomic-writer layout (`..data` symlink swap), and builds Kubernetes Secret data for
//! `secretObjects` / `SecretSync` the way they do.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use akv_csi_provider::proto::v1alpha1::{MountRequest, MountResponse, ObjectVersion};

/// Who is calling the provider, which decides the request's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Driver v1.6: SPC parameters plus every volume-context key; `secrets` is `null` without
    /// a nodePublishSecretRef.
    DriverV16,
    /// Driver ≤ v1.5 rotation reconciler: only pod name, namespace, uid, service account and
    /// tokens are added; `secrets` is `{}` without a secret ref; previous versions are sent.
    DriverV15Rotation,
    /// Sync Controller: the controller's own pod, the SecretSync's namespace and service
    /// account; `secrets` is always `{}`; fixed target path.
    SyncController,
}

/// A pod volume (or a SecretSync) that refers to a SecretProviderClass.
#[derive(Debug, Clone)]
pub struct Volume {
    pub spc_name: String,
    pub parameters: BTreeMap<String, String>,
    pub pod_name: String,
    pub namespace: String,
    pub pod_uid: String,
    pub service_account: String,
    /// Audience → token, for the audiences the CSIDriver's `tokenRequests` lists.
    pub tokens: BTreeMap<String, String>,
    /// Data of the nodePublishSecretRef Secret.
    pub node_publish_secret: Option<BTreeMap<String, String>>,
    /// Other volumeAttributes of the pod.
    pub volume_attributes: BTreeMap<String, String>,
    /// Versions from the previous mount (sent by the v1.5 reconciler only).
    pub previous: Vec<ObjectVersion>,
}

impl Volume {
    pub fn new(spc_name: &str, parameters: BTreeMap<String, String>) -> Volume {
        Volume {
            spc_name: spc_name.into(),
            parameters,
            pod_name: "app-0".into(),
            namespace: "default".into(),
            pod_uid: "6f1c2b54-7a1e-4c11-9b3e-2f3b1c0d9e01".into(),
            service_account: "app".into(),
            tokens: BTreeMap::new(),
            node_publish_secret: None,
            volume_attributes: BTreeMap::new(),
            previous: Vec::new(),
        }
    }

    /// The request `caller` sends for this volume.
    pub fn request(&self, caller: Caller) -> MountRequest {
        let mut attributes = self.parameters.clone();
        let mut put = |k: &str, v: &str| {
            attributes.insert(k.to_string(), v.to_string());
        };
        match caller {
            Caller::DriverV16 => {
                put("secretProviderClass", &self.spc_name);
                put("csi.storage.k8s.io/ephemeral", "true");
                for (k, v) in &self.volume_attributes {
                    put(k, v);
                }
                put("csi.storage.k8s.io/pod.name", &self.pod_name);
                put("csi.storage.k8s.io/pod.uid", &self.pod_uid);
            }
            Caller::DriverV15Rotation => {
                put("csi.storage.k8s.io/pod.name", &self.pod_name);
                put("csi.storage.k8s.io/pod.uid", &self.pod_uid);
            }
            Caller::SyncController => {
                put(
                    "csi.storage.k8s.io/pod.name",
                    "secrets-store-sync-controller-7c9d8-xk2p4",
                );
                put(
                    "csi.storage.k8s.io/pod.uid",
                    "0c6b1f57-3b0e-4b8e-9a43-3fb0b7f6f001",
                );
            }
        }
        put("csi.storage.k8s.io/pod.namespace", &self.namespace);
        put(
            "csi.storage.k8s.io/serviceAccount.name",
            &self.service_account,
        );
        if !self.tokens.is_empty() {
            let tokens: serde_json::Map<String, serde_json::Value> = self
                .tokens
                .iter()
                .map(|(aud, token)| {
                    (aud.clone(), serde_json::json!({"token": token, "expirationTimestamp": "2030-01-01T00:00:00Z"}))
                })
                .collect();
            put(
                "csi.storage.k8s.io/serviceAccount.tokens",
                &serde_json::Value::Object(tokens).to_string(),
            );
        }
        let secrets = match (caller, &self.node_publish_secret) {
            (Caller::SyncController, _) => "{}".to_string(),
            (_, Some(data)) => serde_json::to_string(data).expect("string map"),
            (Caller::DriverV16, None) => "null".to_string(),
            (Caller::DriverV15Rotation, None) => "{}".to_string(),
        };
        let target_path = match caller {
            Caller::SyncController => "/mnt/secrets-store".to_string(),
            _ => format!(
                "/var/lib/kubelet/pods/{}/volumes/kubernetes.io~csi/secrets-store/mount",
                self.pod_uid
            ),
        };
        MountRequest {
            attributes: serde_json::to_string(&attributes).expect("string map"),
            secrets,
            target_path,
            permission: "420".into(),
            current_object_version: match caller {
                Caller::DriverV15Rotation => self.previous.clone(),
                _ => Vec::new(),
            },
        }
    }
}

/// Why the driver would fail a mount after the provider answered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DriverError {
    #[error("mount request failed with provider error code {0}")]
    ProviderCode(String),
    #[error("missing object versions")]
    MissingObjectVersions,
    #[error("invalid file path {0:?}: {1}")]
    Path(String, &'static str),
    #[error("response of {0} bytes exceeds the 4 MiB gRPC limit")]
    TooLarge(usize),
    #[error("file matching objectName {0} not found in the pod")]
    FileNotFound(String),
    #[error("key '{0}' is not supported")]
    UnsupportedKey(String),
    #[error("secret type is required")]
    NoType,
    #[error("{0}")]
    Tls(String),
}

/// The driver's `validatePath` plus its `filepath.Clean(p) == p` check.
pub fn validate_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.len() > 4096 {
        return Err("path too long");
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.contains(&"..") {
        return Err("contains '..'");
    }
    if parts.iter().any(|p| p.len() > 255) {
        return Err("path element too long");
    }
    if parts[0].starts_with("..") && parts[0].len() > 2 {
        return Err("must not start with '..'");
    }
    if parts.iter().any(|p| p.is_empty() || *p == ".") {
        return Err("not a clean path");
    }
    Ok(())
}

/// Validates a response as the driver does before writing anything.
pub fn validate(resp: &MountResponse) -> Result<(), DriverError> {
    use prost::Message;
    if let Some(code) = resp
        .error
        .as_ref()
        .map(|e| &e.code)
        .filter(|c| !c.is_empty())
    {
        return Err(DriverError::ProviderCode(code.clone()));
    }
    if resp.object_version.is_empty() {
        return Err(DriverError::MissingObjectVersions);
    }
    let size = resp.encoded_len();
    if size > 4 * 1024 * 1024 {
        return Err(DriverError::TooLarge(size));
    }
    for f in &resp.files {
        validate_path(&f.path).map_err(|why| DriverError::Path(f.path.clone(), why))?;
    }
    Ok(())
}

/// Writes `resp`'s files into `target` with the kubelet atomic writer's layout: a timestamped
/// directory, `..data` pointing at it, and top-level symlinks. Returns whether anything changed.
pub fn write_atomic(target: &Path, resp: &MountResponse) -> std::io::Result<bool> {
    let files: BTreeMap<&str, (u32, &[u8])> = resp
        .files
        .iter()
        .map(|f| {
            (
                f.path.as_str(),
                ((f.mode as u32) & 0o777, f.contents.as_slice()),
            )
        })
        .collect();
    std::fs::create_dir_all(target)?;
    let data = target.join("..data");
    if let Ok(current) = std::fs::read_link(&data) {
        let current = target.join(current);
        let existing = read_tree(&current)?;
        let same = existing.len() == files.len()
            && files.iter().all(|(p, (mode, bytes))| {
                existing
                    .get(*p)
                    .is_some_and(|(m, b)| m == mode && b.as_slice() == *bytes)
            });
        if same {
            return Ok(false);
        }
    }
    let stamp = format!("..{}.{}", chrono_like_stamp(), std::process::id());
    let dir = target.join(&stamp);
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    for (path, (mode, bytes)) in &files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, bytes)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))?;
    }
    let old = std::fs::read_link(&data).ok();
    let tmp = target.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&stamp, &tmp)?;
    std::fs::rename(&tmp, &data)?;
    let top: std::collections::BTreeSet<&str> = files
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    for name in &top {
        let link = target.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(target)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("..") && !top.contains(name.as_str()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    if let Some(old) = old {
        std::fs::remove_dir_all(target.join(old))?;
    }
    Ok(true)
}

fn chrono_like_stamp() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{nanos}")
}

/// The files visible in a mount directory (following symlinks, skipping `..` entries), as the
/// driver's secret sync reads them: relative path → (mode, bytes).
pub fn mounted_files(target: &Path) -> std::io::Result<BTreeMap<String, (u32, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(target)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("..") {
            continue;
        }
        let path = entry.path();
        if std::fs::metadata(&path)?.is_dir() {
            for (sub, v) in read_tree(&path)? {
                out.insert(format!("{name}/{sub}"), v);
            }
        } else {
            let meta = std::fs::metadata(&path)?;
            out.insert(
                name,
                (meta.permissions().mode() & 0o777, std::fs::read(&path)?),
            );
        }
    }
    Ok(out)
}

fn read_tree(dir: &Path) -> std::io::Result<BTreeMap<String, (u32, Vec<u8>)>> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() {
                stack.push((entry.path(), rel));
            } else {
                out.insert(
                    rel,
                    (
                        meta.permissions().mode() & 0o777,
                        std::fs::read(entry.path())?,
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// One `secretObjects` entry of a SecretProviderClass (or a SecretSync's `secretObject`).
#[derive(Debug, Clone)]
pub struct SecretObject {
    pub secret_name: String,
    pub kind: String,
    /// (objectName / sourcePath, key / targetKey)
    pub data: Vec<(String, String)>,
}

/// Builds the Secret's data from mounted files, as the driver's `secretutil` does.
pub fn secret_data(
    object: &SecretObject,
    files: &BTreeMap<String, (u32, Vec<u8>)>,
) -> Result<BTreeMap<String, Vec<u8>>, DriverError> {
    if object.kind.is_empty() {
        return Err(DriverError::NoType);
    }
    let mut data = BTreeMap::new();
    for (object_name, key) in &object.data {
        let (_, bytes) = files
            .get(object_name)
            .ok_or_else(|| DriverError::FileNotFound(object_name.clone()))?;
        let value = if object.kind == "kubernetes.io/tls" {
            match key.as_str() {
                "tls.crt" => tls_certificates(bytes)?,
                "tls.key" => tls_private_key(bytes)?,
                other => return Err(DriverError::UnsupportedKey(other.to_string())),
            }
        } else {
            bytes.clone()
        };
        data.insert(key.clone(), value);
    }
    Ok(data)
}

/// PEM blocks of a text: (label, DER).
pub fn pem_blocks(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    let text = String::from_utf8_lossy(text);
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.trim().starts_with("-----END ") {
                break;
            }
            if !l.contains(':') {
                body.push_str(l.trim());
            }
        }
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            blocks.push((label.to_string(), der));
        }
    }
    blocks
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn tls_certificates(bytes: &[u8]) -> Result<Vec<u8>, DriverError> {
    let certs: String = pem_blocks(bytes)
        .iter()
        .filter(|(l, _)| l == "CERTIFICATE")
        .map(|(_, der)| pem("CERTIFICATE", der))
        .collect();
    if certs.is_empty() {
        return Err(DriverError::Tls(
            "no certificate found (PKCS#12 input is not supported by this emulator)".into(),
        ));
    }
    Ok(certs.into_bytes())
}

/// The last non-certificate block, re-encoded as the driver does: RSA as PKCS#1
/// `RSA PRIVATE KEY`, EC as SEC1 `EC PRIVATE KEY` with its named curve.
fn tls_private_key(bytes: &[u8]) -> Result<Vec<u8>, DriverError> {
    let (label, der) = pem_blocks(bytes)
        .into_iter()
        .rfind(|(l, _)| l != "CERTIFICATE")
        .ok_or_else(|| DriverError::Tls("no private key found".into()))?;
    let pem_text = match label.as_str() {
        "RSA PRIVATE KEY" | "EC PRIVATE KEY" => pem(&label, &der),
        "PRIVATE KEY" => pkcs8_to_traditional(&der)?,
        other => {
            return Err(DriverError::Tls(format!(
                "unknown private key type {other}"
            )))
        }
    };
    Ok(pem_text.into_bytes())
}

/// Minimal DER reader: (tag, content, rest).
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (
            rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize),
            &rest[n..],
        )
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        let b = (content.len() as u32).to_be_bytes();
        let skip = b.iter().take_while(|x| **x == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&b[skip..]);
    }
    out.extend_from_slice(content);
    out
}

const RSA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const EC_OID: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

fn pkcs8_to_traditional(pkcs8: &[u8]) -> Result<String, DriverError> {
    let bad = || DriverError::Tls("malformed PKCS#8 private key".into());
    let (_, info, _) = read_tlv(pkcs8).ok_or_else(bad)?;
    let (_, _version, rest) = read_tlv(info).ok_or_else(bad)?;
    let (_, algorithm, rest) = read_tlv(rest).ok_or_else(bad)?;
    let (_, private_key, _) = read_tlv(rest).ok_or_else(bad)?;
    let (_, oid, params) = read_tlv(algorithm).ok_or_else(bad)?;
    if oid == RSA_OID {
        return Ok(pem("RSA PRIVATE KEY", private_key));
    }
    if oid != EC_OID {
        return Err(DriverError::Tls("unknown private key type".into()));
    }
    // ECPrivateKey ::= SEQUENCE { version, privateKey, [0] parameters OPTIONAL, [1] publicKey OPTIONAL }
    let (_, ec, _) = read_tlv(private_key).ok_or_else(bad)?;
    let (_, version, rest) = read_tlv(ec).ok_or_else(bad)?;
    let (_, key, rest) = read_tlv(rest).ok_or_else(bad)?;
    let mut fields = der(0x02, version);
    fields.extend(der(0x04, key));
    let mut tail = rest;
    let mut public = None;
    let mut has_params = false;
    while let Some((tag, content, next)) = read_tlv(tail) {
        match tag {
            0xa0 => {
                has_params = true;
                fields.extend(der(0xa0, content));
            }
            0xa1 => public = Some(der(0xa1, content)),
            _ => {}
        }
        tail = next;
    }
    if !has_params {
        fields.extend(der(0xa0, params));
    }
    if let Some(public) = public {
        fields.extend(public);
    }
    Ok(pem("EC PRIVATE KEY", &der(0x30, &fields)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use akv_csi_provider::proto::v1alpha1::File;

    #[test]
    fn path_rules() {
        for ok in ["a", "a/b", "a.b", "a/..b"] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "/a", "..", "..a", "a/../b", "..ab/c", "./a", "a/", "a//b", "a/./b",
        ] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_shapes() {
        let mut v = Volume::new(
            "spc",
            BTreeMap::from([("keyvaultName".to_string(), "kv".to_string())]),
        );
        let r16 = v.request(Caller::DriverV16);
        assert_eq!(r16.secrets, "null");
        assert_eq!(r16.permission, "420");
        let attrs: BTreeMap<String, String> = serde_json::from_str(&r16.attributes).unwrap();
        assert_eq!(attrs["secretProviderClass"], "spc");
        let r15 = v.request(Caller::DriverV15Rotation);
        assert_eq!(r15.secrets, "{}");
        let attrs: BTreeMap<String, String> = serde_json::from_str(&r15.attributes).unwrap();
        assert!(
            !attrs.contains_key("secretProviderClass")
                && !attrs.contains_key("csi.storage.k8s.io/ephemeral")
        );
        v.tokens
            .insert("api://AzureADTokenExchange".into(), "jwt".into());
        v.node_publish_secret = Some(BTreeMap::from([("clientid".to_string(), "x".to_string())]));
        let sync = v.request(Caller::SyncController);
        assert_eq!(sync.secrets, "{}");
        assert_eq!(sync.target_path, "/mnt/secrets-store");
        let attrs: BTreeMap<String, String> = serde_json::from_str(&sync.attributes).unwrap();
        let tokens: serde_json::Value =
            serde_json::from_str(&attrs["csi.storage.k8s.io/serviceAccount.tokens"]).unwrap();
        assert_eq!(tokens["api://AzureADTokenExchange"]["token"], "jwt");
    }

    #[test]
    fn atomic_writer_layout_and_noop() {
        let dir = tempfile::tempdir().unwrap();
        let resp = MountResponse {
            object_version: vec![ObjectVersion {
                id: "secret/a".into(),
                version: "1".into(),
            }],
            files: vec![
                File {
                    path: "a".into(),
                    mode: 0o600,
                    contents: b"one".to_vec(),
                },
                File {
                    path: "d/b".into(),
                    mode: 0o644,
                    contents: b"two".to_vec(),
                },
            ],
            error: None,
        };
        validate(&resp).unwrap();
        assert!(write_atomic(dir.path(), &resp).unwrap());
        let data = std::fs::read_link(dir.path().join("..data")).unwrap();
        assert!(
            !write_atomic(dir.path(), &resp).unwrap(),
            "identical content touches nothing"
        );
        assert_eq!(std::fs::read_link(dir.path().join("..data")).unwrap(), data);
        let files = mounted_files(dir.path()).unwrap();
        assert_eq!(files["a"], (0o600, b"one".to_vec()));
        assert_eq!(files["d/b"], (0o644, b"two".to_vec()));
        assert!(std::fs::symlink_metadata(dir.path().join("d"))
            .unwrap()
            .file_type()
            .is_symlink());
        let mut changed = resp.clone();
        changed.files.truncate(1);
        assert!(write_atomic(dir.path(), &changed).unwrap());
        assert!(!dir.path().join("d").exists(), "stale entries removed");
        assert!(!dir.path().join(&data).exists(), "old directory removed");
    }

    #[test]
    fn validation_like_the_driver() {
        let mut resp = MountResponse::default();
        assert_eq!(validate(&resp), Err(DriverError::MissingObjectVersions));
        resp.object_version.push(ObjectVersion {
            id: "x".into(),
            version: "1".into(),
        });
        resp.files.push(File {
            path: "a/./b".into(),
            mode: 0o644,
            contents: vec![],
        });
        assert!(matches!(validate(&resp), Err(DriverError::Path(..))));
    }
}
