//! Outbound proxies from the environment, with the rules of Go's `net/http.ProxyFromEnvironment`
//! (`golang.org/x/net/http/httpproxy`: `FromEnvironment`, `Config.ProxyFunc`, `useProxy`), so a
//! cluster configured for the Go provider routes this one's traffic the same way:
//!
//! - `HTTPS_PROXY` serves https URLs, `HTTP_PROXY` http URLs; the upper-case name wins over the
//!   lower-case one unless it is empty (`getEnvAny`).
//! - A value without a scheme and host (`proxy:3128`, `10.0.0.4:3128`, `user:pw@proxy`) means
//!   `http://` plus the value (`parseProxy`). Credentials in it become `Proxy-Authorization:
//!   Basic` on CONNECT and on plain-HTTP requests.
//! - `NO_PROXY` entries are comma-separated, trimmed and case-insensitive (`config.init`): `*`
//!   (nothing is proxied), an IP network in CIDR notation, an IP address, or a domain, the last
//!   two optionally with `:port` (`[v6]:port`). `foo.com` matches `foo.com` and its subdomains;
//!   `.foo.com` and `*.foo.com` only its subdomains; a domain never matches an IP address. A
//!   port matches the URL's port or its scheme's default.
//! - `localhost` and loopback addresses are never proxied.
//!
//! Deliberate differences, all documented in the README:
//! - Link-local addresses (169.254.0.0/16, fe80::/10) are never proxied either. IMDS
//!   (169.254.169.254) is plain HTTP and answers with access tokens: a proxy would read them,
//!   and would reach its own machine's metadata service, not this node's.
//! - A value that cannot be used (unparsable, or a scheme other than http and https: Go also
//!   speaks socks5) stops the provider at start-up naming the variable; Go connects directly.
//! - Go refuses `HTTP_PROXY` in a CGI process (`REQUEST_METHOD` set); the provider never is one.
//!
//! The variables are read once per process, as Go's `envProxyFunc` reads them once.

mod no_proxy;

use std::fmt;
use std::sync::OnceLock;

use url::Url;

use no_proxy::NoProxy;

/// A proxy URL from one variable. It may carry credentials: show it only through `Display` or
/// `Debug`, which replace them with `xxxxx`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    url: Url,
    variable: &'static str,
}

impl ProxyUrl {
    /// The URL with its credentials, for the HTTP client only.
    fn with_credentials(&self) -> &Url {
        &self.url
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.url;
        let credentials = !u.username().is_empty() || u.password().is_some();
        write!(f, "{}://", u.scheme())?;
        if credentials {
            f.write_str("xxxxx@")?;
        }
        f.write_str(u.host_str().unwrap_or_default())?;
        if let Some(port) = u.port() {
            write!(f, ":{port}")?;
        }
        write!(f, " ({})", self.variable)
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A proxy variable that cannot be used. Values are shown with their credentials removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyEnvError {
    #[error("{variable}={value:?} is not a proxy URL: {detail}")]
    Invalid {
        variable: &'static str,
        value: String,
        detail: String,
    },
    #[error(
        "{variable}: proxy scheme {scheme:?} is not supported: use an http:// or https:// proxy"
    )]
    Scheme {
        variable: &'static str,
        scheme: String,
    },
}

/// The proxy settings of the process.
#[derive(Debug)]
pub struct ProxyEnv {
    http: Option<ProxyUrl>,
    https: Option<ProxyUrl>,
    no_proxy: NoProxy,
    no_proxy_text: String,
}

static ENVIRONMENT: OnceLock<Result<ProxyEnv, ProxyEnvError>> = OnceLock::new();

/// The settings of this process's environment, read on first use (the CLI uses it at start-up).
pub fn environment() -> Result<&'static ProxyEnv, ProxyEnvError> {
    ENVIRONMENT
        .get_or_init(|| ProxyEnv::from_lookup(|name| std::env::var(name).ok()))
        .as_ref()
        .map_err(Clone::clone)
}

impl ProxyEnv {
    /// Reads the variables through `get` (the environment, or a table in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ProxyEnv, ProxyEnvError> {
        // getEnvAny: the first of the names with a non-empty value.
        let any = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| get(n).filter(|v| !v.is_empty()).map(|v| (n, v)))
        };
        let proxy = |names| any(names).map(|(n, v)| parse_proxy(n, &v)).transpose();
        let no_proxy_text = any(["NO_PROXY", "no_proxy"])
            .map(|(_, v)| v)
            .unwrap_or_default();
        Ok(ProxyEnv {
            http: proxy(["HTTP_PROXY", "http_proxy"])?,
            https: proxy(["HTTPS_PROXY", "https_proxy"])?,
            no_proxy: NoProxy::parse(&no_proxy_text),
            no_proxy_text,
        })
    }

    /// True when no proxy variable is set: every connection is direct.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    pub fn http(&self) -> Option<&ProxyUrl> {
        self.http.as_ref()
    }

    pub fn https(&self) -> Option<&ProxyUrl> {
        self.https.as_ref()
    }

    /// `NO_PROXY` as given (it holds no credentials).
    pub fn no_proxy(&self) -> &str {
        &self.no_proxy_text
    }

    /// The proxy for a request to `url`, or `None` for a direct connection (`proxyForURL`).
    pub fn proxy_for(&self, url: &Url) -> Option<&ProxyUrl> {
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            "http" => self.http.as_ref(),
            _ => None,
        }?;
        let host = url
            .host_str()?
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = url
            .port_or_known_default()
            .map(|p| p.to_string())
            .unwrap_or_default();
        self.no_proxy.use_proxy(host, &port).then_some(proxy)
    }

    /// A `reqwest` proxy that asks [`ProxyEnv::proxy_for`] for every new connection; `None`
    /// when no variable is set.
    pub fn reqwest_proxy(&'static self) -> Option<reqwest::Proxy> {
        if self.is_empty() {
            return None;
        }
        Some(reqwest::Proxy::custom(move |url| {
            self.proxy_for(url).map(|p| p.with_credentials().clone())
        }))
    }
}

/// `parseProxy`: a URL with a scheme and a host, or else `http://` plus the value. Unlike Go,
/// a value that has `://` but does not parse is not retried (Go would read
/// `http://[::1` as a proxy on the host `http`).
fn parse_proxy(variable: &'static str, value: &str) -> Result<ProxyUrl, ProxyEnvError> {
    let invalid = |e: url::ParseError| ProxyEnvError::Invalid {
        variable,
        value: redact_raw(value),
        detail: e.to_string(),
    };
    let parsed = Url::parse(value);
    let url = match parsed {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => url,
        Err(e) if value.contains("://") => return Err(invalid(e)),
        _ => Url::parse(&format!("http://{value}")).map_err(invalid)?,
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ProxyEnvError::Scheme {
            variable,
            scheme: url.scheme().to_string(),
        });
    }
    Ok(ProxyUrl { url, variable })
}

/// A value that did not parse, with anything before its last `@` (after a scheme) hidden.
fn redact_raw(value: &str) -> String {
    let start = value.find("://").map_or(0, |i| i + 3);
    match value.rfind('@') {
        Some(at) if at >= start => format!("{}xxxxx{}", &value[..start], &value[at..]),
        _ => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<ProxyEnv, ProxyEnvError> {
        ProxyEnv::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The proxy URL (credentials included, no trailing slash) for `req`, or "<nil>" as Go's
    /// table prints no proxy.
    fn proxy_for(vars: &[(&str, &str)], req: &str) -> String {
        let env = env(vars).unwrap();
        match env.proxy_for(&Url::parse(req).unwrap()) {
            Some(p) => p
                .with_credentials()
                .as_str()
                .trim_end_matches('/')
                .to_string(),
            None => "<nil>".to_string(),
        }
    }

    /// Go's `proxyForURLTests` (golang.org/x/net, http/httpproxy/proxy_test.go, run by
    /// `TestProxyForURL`), minus the CGI cases (no counterpart here) and the unsupported
    /// schemes (see `schemes_go_would_use_stop_the_provider`). The zone-id case is in
    /// `use_proxy_matches_gos_table`, as URLs here cannot carry zones.
    type Vars<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn proxy_for_url_matches_gos_table() {
        let example = "http://example.com";
        let cases: &[(Vars, &str, &str)] = &[
            (
                &[("HTTP_PROXY", "127.0.0.1:8080")],
                example,
                "http://127.0.0.1:8080",
            ),
            (
                &[("HTTP_PROXY", "cache.corp.example.com:1234")],
                example,
                "http://cache.corp.example.com:1234",
            ),
            (
                &[("HTTP_PROXY", "cache.corp.example.com")],
                example,
                "http://cache.corp.example.com",
            ),
            (&[("HTTP_PROXY", "localhost")], example, "http://localhost"),
            (
                &[("HTTP_PROXY", "https://cache.corp.example.com")],
                example,
                "https://cache.corp.example.com",
            ),
            (
                &[("HTTP_PROXY", "http://127.0.0.1:8080")],
                example,
                "http://127.0.0.1:8080",
            ),
            (
                &[("HTTP_PROXY", "https://127.0.0.1:8080")],
                example,
                "https://127.0.0.1:8080",
            ),
            (
                &[
                    ("HTTP_PROXY", "http.proxy.tld"),
                    ("HTTPS_PROXY", "secure.proxy.tld"),
                ],
                "http://insecure.tld/",
                "http://http.proxy.tld",
            ),
            (
                &[
                    ("HTTP_PROXY", "http.proxy.tld"),
                    ("HTTPS_PROXY", "secure.proxy.tld"),
                ],
                "https://secure.tld/",
                "http://secure.proxy.tld",
            ),
            (
                &[
                    ("HTTP_PROXY", "http.proxy.tld"),
                    ("HTTPS_PROXY", "https://secure.proxy.tld"),
                ],
                "https://secure.tld/",
                "https://secure.proxy.tld",
            ),
            (
                &[("HTTP_PROXY", "http.proxy.tld")],
                "https://secure.tld/",
                "<nil>",
            ),
            (
                &[("HTTP_PROXY", "http.proxy.tld")],
                "ftp://insecure.tld/",
                "<nil>",
            ),
            (&[], example, "<nil>"),
            (
                &[("NO_PROXY", "example.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                "<nil>",
            ),
            (
                &[("NO_PROXY", ".example.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                "http://proxy",
            ),
            (
                &[("NO_PROXY", "ample.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                "http://proxy",
            ),
            (
                &[("NO_PROXY", "example.com"), ("HTTP_PROXY", "proxy")],
                "http://foo.example.com/",
                "<nil>",
            ),
            (
                &[("NO_PROXY", ".foo.com"), ("HTTP_PROXY", "proxy")],
                "http://example.com/",
                "http://proxy",
            ),
            (
                &[("NO_PROXY", ".示例.com"), ("HTTP_PROXY", "proxy")],
                "http://www.示例.com",
                "<nil>",
            ),
            (
                &[("NO_PROXY", "xn--fsq092h.com"), ("HTTP_PROXY", "proxy")],
                "http://www.示例.com",
                "<nil>",
            ),
            (
                &[("NO_PROXY", "示例.com"), ("HTTP_PROXY", "proxy")],
                "http://www.xn--fsq092h.com",
                "<nil>",
            ),
        ];
        for (vars, req, want) in cases {
            assert_eq!(proxy_for(vars, req), *want, "{vars:?} {req}");
        }
    }

    /// Go's `TestFromEnvironment` and `TestFromEnvironmentLowerCase`, and `getEnvAny`'s rule
    /// that an empty upper-case variable does not hide the lower-case one.
    #[test]
    fn upper_case_wins_unless_empty() {
        let both = [
            ("HTTPS_PROXY", "upper:1"),
            ("https_proxy", "lower:1"),
            ("HTTP_PROXY", ""),
            ("http_proxy", "lower:2"),
            ("NO_PROXY", "a.test"),
            ("no_proxy", "b.test"),
        ];
        let e = env(&both).unwrap();
        assert_eq!(
            e.https().unwrap().to_string(),
            "http://upper:1 (HTTPS_PROXY)"
        );
        assert_eq!(e.http().unwrap().to_string(), "http://lower:2 (http_proxy)");
        assert_eq!(e.no_proxy(), "a.test");
        assert!(env(&[("no_proxy", "")]).unwrap().is_empty());
    }

    #[test]
    fn link_local_and_loopback_are_never_proxied() {
        let e = env(&[("HTTP_PROXY", "proxy:3128"), ("HTTPS_PROXY", "proxy:3128")]).unwrap();
        for url in [
            "http://169.254.169.254/metadata/identity/oauth2/token",
            "http://169.254.0.1:8080/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://localhost:2579/host/token/",
            "http://127.0.0.1:2579/",
            "https://127.8.9.10/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert_eq!(e.proxy_for(&Url::parse(url).unwrap()), None, "{url}");
        }
        for url in [
            "http://169.253.169.254/",
            "http://[fec0::1]/",
            "https://login.microsoftonline.com/",
            "http://localhost.example/",
        ] {
            assert!(e.proxy_for(&Url::parse(url).unwrap()).is_some(), "{url}");
        }
    }

    #[test]
    fn no_proxy_ports_addresses_and_networks() {
        let e = env(&[
            ("HTTPS_PROXY", "proxy:3128"),
            (
                "NO_PROXY",
                " Vault.Example:443 ,login.example:8443, 10.1.0.0/16,[fd00::7]:443 ",
            ),
        ])
        .unwrap();
        let proxied = |u: &str| e.proxy_for(&Url::parse(u).unwrap()).is_some();
        assert!(
            !proxied("https://vault.example/"),
            "the scheme's default port"
        );
        assert!(!proxied("https://kv.vault.example/"));
        assert!(proxied("https://vault.example:8443/"));
        assert!(proxied("https://login.example/"), "port 443 is not 8443");
        assert!(!proxied("https://login.example:8443/"));
        assert!(!proxied("https://10.1.200.3/"));
        assert!(
            !proxied("https://[::ffff:10.1.0.9]/"),
            "IPv4-mapped IPv6 as IPv4"
        );
        assert!(proxied("https://10.2.0.1/"));
        assert!(!proxied("https://[fd00::7]/"));
        assert!(proxied("https://[fd00::7]:8443/"));
        assert!(
            proxied("https://10.1.0.0.example/"),
            "a domain, not the network"
        );
    }

    /// Go would use these (`socks5`) or fail on each request (`foo`); here an unusable proxy
    /// stops the provider at start-up, naming the variable, with credentials hidden.
    #[test]
    fn schemes_go_would_use_stop_the_provider() {
        let err = env(&[("HTTPS_PROXY", "socks5://127.0.0.1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "HTTPS_PROXY: proxy scheme \"socks5\" is not supported: use an http:// or https:// proxy"
        );
        assert!(env(&[("http_proxy", "foo://host")]).is_err());
        let err = env(&[("HTTPS_PROXY", "http://user:hunter2-secret@[::1")]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("HTTPS_PROXY=\"http://xxxxx@[::1\" is not a proxy URL"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn credentials_are_used_but_never_shown() {
        let e = env(&[("HTTPS_PROXY", "user:p%40ss%3Aword@proxy.corp:3128")]).unwrap();
        let p = e.https().unwrap();
        assert_eq!(p.to_string(), "http://xxxxx@proxy.corp:3128 (HTTPS_PROXY)");
        assert_eq!(format!("{e:?}").matches("p%40ss").count(), 0, "{e:?}");
        assert_eq!(p.with_credentials().password(), Some("p%40ss%3Aword"));
        let e = env(&[("HTTPS_PROXY", "https://token@[fd00::1]")]).unwrap();
        assert_eq!(
            e.https().unwrap().to_string(),
            "https://xxxxx@[fd00::1] (HTTPS_PROXY)"
        );
    }

    /// The client sends the decoded credentials: `Proxy-Authorization` on CONNECT for https
    /// and on the request itself for plain HTTP, as Go's transport does.
    #[tokio::test]
    async fn reqwest_sends_proxy_authorization() {
        use base64::Engine;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("user:p%40ss%3Aword@{}", listener.local_addr().unwrap());
        let vars = [("HTTPS_PROXY", url.as_str()), ("HTTP_PROXY", url.as_str())];
        let env: &'static ProxyEnv = Box::leak(Box::new(env(&vars).unwrap()));
        let heads = tokio::spawn(async move {
            let mut heads = Vec::new();
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = stream.read(&mut buf).await.unwrap();
                heads.push(String::from_utf8_lossy(&buf[..n]).to_lowercase());
                let refusal = "HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                stream.write_all(refusal.as_bytes()).await.unwrap();
            }
            heads
        });
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::net::tls_config(&[]).unwrap())
            .proxy(env.reqwest_proxy().unwrap())
            .build()
            .unwrap();
        let tunnel = client.get("https://kv.example.test/secrets/x").send().await;
        assert!(tunnel.is_err(), "the proxy refused the tunnel");
        let plain = client
            .get("http://imds.example.test/token")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 407);
        let heads = heads.await.unwrap();
        let auth = format!(
            "proxy-authorization: basic {}",
            base64::engine::general_purpose::STANDARD
                .encode("user:p@ss:word")
                .to_lowercase()
        );
        assert!(
            heads[0].starts_with("connect kv.example.test:443 http/1.1"),
            "{}",
            heads[0]
        );
        assert!(
            heads[1].starts_with("get http://imds.example.test/token http/1.1"),
            "{}",
            heads[1]
        );
        assert!(heads.iter().all(|h| h.contains(&auth)), "{heads:?}");
    }
}
