//! Prometheus metrics: the Go provider's histograms `keyvault_request` and `grpc_request` with
//! its bucket boundaries, but only low-cardinality labels (object type, outcome class, status
//! code, method; never object names or error text), plus counters for token requests, cache use,
//! retries, throttling and skipped optional objects. Callers record through methods; the label
//! sets are private to this module. Served by [`crate::server`].

use std::fmt::Write;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::spec::ObjectType;

/// The Go provider's histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.1, 0.2, 0.3, 0.4, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0, 15.0, 30.0,
];

const PROVIDER: &str = "azure";
const OS_TYPE: &str = std::env::consts::OS;

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyVaultLabels {
    provider: &'static str,
    os_type: &'static str,
    /// `secret`, `key`, `cert`.
    object_type: &'static str,
    /// `get` or `list`.
    operation: &'static str,
    /// `ok`, `challenge`, `client_error`, `throttled`, `server_error`, `transport_error`.
    outcome: &'static str,
    /// HTTP status, or `0` when no response arrived.
    status_code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
    provider: &'static str,
    os_type: &'static str,
    grpc_method: &'static str,
    grpc_code: &'static str,
    /// Error class of failed mounts (`invalid_request`, `object_error`, …), empty on success.
    error_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    mode: &'static str,
    /// `ok` or `error`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    /// `hit` or `miss`.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectTypeLabels {
    object_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultLabels {
    /// The vault's name, or `other` past [`MAX_VAULT_LABELS`] distinct vaults.
    vault: String,
    object_type: &'static str,
}

/// Distinct `vault` label values: a node reads few vaults; a flood of names (a misconfigured
/// SecretProviderClass per pod) must not grow the series without bound.
const MAX_VAULT_LABELS: usize = 64;

/// Every metric of the process; shared by reference, no global registry.
pub struct Metrics {
    registry: Registry,
    keyvault_request: Family<KeyVaultLabels, Histogram, fn() -> Histogram>,
    grpc_request: Family<GrpcLabels, Histogram, fn() -> Histogram>,
    token_requests: Family<TokenLabels, Counter>,
    cache_lookups: Family<CacheLabels, Counter>,
    keyvault_retries: Family<VaultLabels, Counter>,
    keyvault_throttled: Family<VaultLabels, Counter>,
    vaults_labelled: std::sync::Mutex<std::collections::HashSet<String>>,
    optional_skipped: Family<ObjectTypeLabels, Counter>,
    stale_served: Family<StaleLabels, Counter>,
    stale_age: Family<StaleLabels, Histogram, fn() -> Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StaleLabels {
    /// `object` or `versions`.
    cache: &'static str,
}

/// Ages of stale copies, in seconds: from a second to a day.
fn age_histogram() -> Histogram {
    Histogram::new([
        1.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 21600.0, 86400.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let keyvault_request = Family::new_with_constructor(histogram as fn() -> Histogram);
        let grpc_request = Family::new_with_constructor(histogram as fn() -> Histogram);
        let m = Metrics {
            keyvault_request,
            grpc_request,
            token_requests: Family::default(),
            cache_lookups: Family::default(),
            keyvault_retries: Family::default(),
            keyvault_throttled: Family::default(),
            vaults_labelled: Default::default(),
            optional_skipped: Family::default(),
            stale_served: Family::default(),
            stale_age: Family::new_with_constructor(age_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        macro_rules! register {
            ($($field:ident: $name:literal, $help:literal;)*) => {
                $(registry.register($name, $help, m.$field.clone());)*
            };
        }
        register! {
            keyvault_request: "keyvault_request", "Duration of Key Vault requests in seconds";
            grpc_request: "grpc_request", "Duration of gRPC requests in seconds";
            token_requests: "token_requests", "Access-token requests to Entra ID, IMDS or NMI, by identity mode and outcome";
            cache_lookups: "cache_lookups", "Cache lookups by cache and result";
            keyvault_retries: "keyvault_retries", "Key Vault requests retried after throttling, a server error or a transport error";
            keyvault_throttled: "keyvault_throttled", "Key Vault answers with status 429";
            optional_skipped: "optional_objects_skipped", "Objects marked optional that were left out of a mount because Key Vault has no enabled version of them";
            stale_served: "stale_copies_served", "Objects and version listings served from the last good copy because Key Vault failed (--serve-stale-on-error)";
            stale_age: "stale_copy_age_seconds", "Age of the stale copies served";
        }
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// One HTTP exchange with Key Vault (`operation` `get` or `list`); `status` 0 when no
    /// response arrived.
    pub fn keyvault_exchange(
        &self,
        vault: &str,
        kind: ObjectType,
        operation: &'static str,
        status: u16,
        elapsed: Duration,
    ) {
        let outcome = match status {
            0 => "transport_error",
            200..=299 => "ok",
            401 => "challenge",
            429 => "throttled",
            500..=599 => "server_error",
            _ => "client_error",
        };
        let labels = KeyVaultLabels {
            provider: PROVIDER,
            os_type: OS_TYPE,
            object_type: kind.as_str(),
            operation,
            outcome,
            status_code: status,
        };
        self.keyvault_request
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if status == 429 {
            self.keyvault_throttled
                .get_or_create(&self.vault_labels(vault, kind))
                .inc();
        }
    }

    /// A Key Vault request is about to be retried.
    pub fn keyvault_retry(&self, vault: &str, kind: ObjectType) {
        self.keyvault_retries
            .get_or_create(&self.vault_labels(vault, kind))
            .inc();
    }

    fn vault_labels(&self, vault: &str, kind: ObjectType) -> VaultLabels {
        let vault = vault.to_ascii_lowercase();
        let mut seen = self.vaults_labelled.lock().expect("vault labels lock");
        let known =
            seen.contains(&vault) || (seen.len() < MAX_VAULT_LABELS && seen.insert(vault.clone()));
        VaultLabels {
            vault: if known { vault } else { "other".into() },
            object_type: kind.as_str(),
        }
    }

    /// One gRPC call of the driver; `error_class` is empty on success.
    pub fn grpc_request(
        &self,
        grpc_method: &'static str,
        grpc_code: &'static str,
        error_class: &'static str,
        elapsed: Duration,
    ) {
        self.grpc_request
            .get_or_create(&GrpcLabels {
                provider: PROVIDER,
                os_type: OS_TYPE,
                grpc_method,
                grpc_code,
                error_class,
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A token request to Entra ID, IMDS, NMI or the token proxy.
    pub fn token_request(&self, mode: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "error" };
        self.token_requests
            .get_or_create(&TokenLabels { mode, outcome })
            .inc();
    }

    /// A lookup in the `token`, `object` or `versions` cache.
    pub fn cache_lookup(&self, cache: &'static str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_lookups
            .get_or_create(&CacheLabels { cache, result })
            .inc();
    }

    /// A stale copy stood in for a failed Key Vault answer.
    pub fn served_stale(&self, cache: &'static str, age: Duration) {
        self.stale_served
            .get_or_create(&StaleLabels { cache })
            .inc();
        self.stale_age
            .get_or_create(&StaleLabels { cache })
            .observe(age.as_secs_f64());
    }

    /// An optional object left out of a mount.
    pub fn optional_skipped(&self, kind: ObjectType) {
        self.optional_skipped
            .get_or_create(&object_type(kind))
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }
}

fn object_type(kind: ObjectType) -> ObjectTypeLabels {
    ObjectTypeLabels {
        object_type: kind.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_buckets_and_labels() {
        let m = Metrics::default();
        m.keyvault_exchange(
            "kv-a",
            ObjectType::Secret,
            "get",
            200,
            Duration::from_millis(50),
        );
        m.keyvault_exchange(
            "KV-A",
            ObjectType::Key,
            "get",
            429,
            Duration::from_millis(50),
        );
        for i in 0..MAX_VAULT_LABELS + 5 {
            m.keyvault_retry(&format!("kv-{i}"), ObjectType::Secret);
        }
        m.token_request("workload_identity", true);
        let text = m.encode();
        assert!(text.contains("# TYPE keyvault_request histogram"), "{text}");
        assert!(
            text.contains("keyvault_request_bucket{le=\"0.1\",provider=\"azure\""),
            "{text}"
        );
        assert!(text.contains("le=\"30.0\""), "{text}");
        assert!(text.contains("status_code=\"200\""), "{text}");
        assert!(
            text.contains("keyvault_throttled_total{vault=\"kv-a\",object_type=\"key\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("keyvault_retries_total{vault=\"other\",object_type=\"secret\"} 6"),
            "at most {MAX_VAULT_LABELS} vaults are named: {text}"
        );
        assert!(
            text.contains("token_requests_total{mode=\"workload_identity\",outcome=\"ok\"} 1"),
            "{text}"
        );
    }
}
