//! `NO_PROXY` and the addresses never proxied: Go's `useProxy` and the matchers `config.init`
//! builds (golang.org/x/net, http/httpproxy/proxy.go), plus the link-local rule of this
//! provider.

use std::net::IpAddr;

/// The parsed `NO_PROXY` list.
#[derive(Debug, Default)]
pub struct NoProxy {
    /// `*`: nothing is proxied.
    all: bool,
    ips: Vec<IpRule>,
    domains: Vec<DomainRule>,
}

#[derive(Debug)]
enum IpRule {
    Network { base: IpAddr, prefix: u8 },
    Address { ip: IpAddr, port: String },
}

/// `suffix` starts with a dot; `exact` also matches the name without it (`foo.com`, unlike
/// `.foo.com`, matches `foo.com` itself).
#[derive(Debug)]
struct DomainRule {
    suffix: String,
    port: String,
    exact: bool,
}

impl NoProxy {
    /// Whether a request to `host` (no brackets) and `port` goes through the proxy (`useProxy`).
    pub fn use_proxy(&self, host: &str, port: &str) -> bool {
        if host == "localhost" {
            return false;
        }
        let ip = parse_addr(host).map(|ip| ip.to_canonical());
        if ip.is_some_and(|ip| ip.is_loopback() || is_link_local(ip)) {
            return false;
        }
        !self.matches(&host.trim().to_ascii_lowercase(), port, ip)
    }

    /// `config.init`: each entry is tried as `*`, a CIDR, an IP with an optional port, then a
    /// domain with an optional port; malformed entries are skipped.
    pub fn parse(list: &str) -> NoProxy {
        let mut rules = NoProxy::default();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return NoProxy {
                    all: true,
                    ..NoProxy::default()
                };
            }
            if let Some((base, prefix)) = parse_cidr(&entry) {
                rules.ips.push(IpRule::Network { base, prefix });
                continue;
            }
            let (host, port) = match split_host_port(&entry) {
                Some(("", _)) => continue,
                Some((host, port)) => {
                    let unbracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
                    (unbracketed.unwrap_or(host), port)
                }
                None => (entry.as_str(), ""),
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                let port = port.to_string();
                rules.ips.push(IpRule::Address { ip, port });
                continue;
            }
            if host.is_empty() {
                continue;
            }
            let host = host
                .strip_prefix('*')
                .filter(|h| h.starts_with('.'))
                .unwrap_or(host);
            let exact = !host.starts_with('.');
            let suffix = match exact {
                true => format!(".{host}"),
                false => host.to_string(),
            };
            rules.domains.push(DomainRule {
                suffix: idna_ascii(&suffix),
                port: port.to_string(),
                exact,
            });
        }
        rules
    }

    /// Whether an entry exempts `host` (lower case) at `port`; `ip` is the host as an address.
    fn matches(&self, host: &str, port: &str, ip: Option<IpAddr>) -> bool {
        if self.all {
            return true;
        }
        let port_ok = |rule: &str| rule.is_empty() || rule == port;
        if let Some(ip) = ip {
            return self.ips.iter().any(|rule| match rule {
                IpRule::Network { base, prefix } => in_network(ip, *base, *prefix),
                IpRule::Address { ip: rule_ip, port } => {
                    rule_ip.to_canonical() == ip && port_ok(port)
                }
            });
        }
        self.domains.iter().any(|rule| {
            let name_ok = host.ends_with(&rule.suffix) || (rule.exact && host == &rule.suffix[1..]);
            name_ok && port_ok(&rule.port)
        })
    }
}

/// An IP address, as Go's `netip.ParseAddr` reads a host: an IPv6 zone (`fe80::1%eth0`) is
/// allowed and ignored.
fn parse_addr(host: &str) -> Option<IpAddr> {
    host.parse().ok().or_else(|| {
        let (addr, _zone) = host.split_once('%')?;
        addr.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
    })
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.is_unicast_link_local(),
    }
}

/// Go's `idnaASCII`: a non-ASCII name in its `xn--` form; ASCII names stay as they are.
fn idna_ascii(name: &str) -> String {
    if name.is_ascii() {
        return name.to_string();
    }
    match url::Host::parse(name.trim_start_matches('.')) {
        Ok(url::Host::Domain(ascii)) => format!(".{ascii}"),
        _ => name.to_string(),
    }
}

/// `net.ParseCIDR`: `address/prefix` with a prefix no longer than the address.
fn parse_cidr(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = entry.split_once('/')?;
    let base: IpAddr = addr.parse().ok()?;
    let bits = if base.is_ipv4() { 32 } else { 128 };
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= bits && prefix.bytes().all(|b| b.is_ascii_digit()))?;
    Some((base, prefix))
}

/// Whether `ip` (canonical: IPv4-mapped IPv6 addresses as IPv4, as Go's `IPNet.Contains`
/// reads them) lies in `base/prefix`.
fn in_network(ip: IpAddr, base: IpAddr, prefix: u8) -> bool {
    let prefix = u32::from(prefix);
    match (ip, base) {
        (IpAddr::V4(ip), IpAddr::V4(base)) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(ip) & mask == u32::from(base) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(base)) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(ip) & mask == u128::from(base) & mask
        }
        _ => false,
    }
}

/// `net.SplitHostPort`: `host:port` or `[host]:port`; `None` when there is no port or the
/// form is wrong (too many colons, stray brackets). The port is not checked.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    let colon = s.rfind(':')?;
    let (host, after_open, after_close) = if s.starts_with('[') {
        let end = s.find(']')?;
        if end + 1 != colon {
            return None;
        }
        (&s[1..end], 1, end + 1)
    } else {
        let host = &s[..colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if s[after_open..].contains('[') || s[after_close..].contains(']') {
        return None;
    }
    Some((host, &s[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GO_NO_PROXY: &str = "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, 2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64";

    /// Go's `UseProxyTests` with its `noProxy` list, as `TestUseProxy` runs them (port 80), and
    /// `TestAllNoProxy` (`*`) and `TestInvalidNoProxy` (`:1`), from the same file.
    #[test]
    fn use_proxy_matches_gos_table() {
        let cases = [
            ("localhost", false),
            ("127.0.0.1", false),
            ("127.0.0.2", false),
            ("[::1]", false),
            ("[::2]", true),
            ("192.168.1.1", false),
            ("192.168.1.2", true),
            ("192.168.1.3", false),
            ("192.168.1.4", true),
            ("10.0.0.2", false),
            ("[2001:db8::52:0:1]", false),
            ("[2001:db8::52:0:2]", true),
            ("[2001:db8::52:0:3]", false),
            ("[2002:db8:a::123]", false),
            ("[fe80::424b:c8be:1643:a1b6]", true),
            ("barbaz.net", true),
            ("www.barbaz.net", false),
            ("foobar.com", false),
            ("www.foobar.com", false),
            ("foofoobar.com", true),
            ("baz.com", true),
            ("localhost.net", true),
            ("local.localhost", true),
            ("barbarbaz.net", true),
            ("wildcard.io", true),
            ("nested.wildcard.io", false),
            ("awildcard.io", true),
        ];
        let listed = NoProxy::parse(GO_NO_PROXY);
        let all = NoProxy::parse("*");
        for (host, want) in cases {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            // Go proxies this link-local address; this provider never does.
            let want = want && host != "fe80::424b:c8be:1643:a1b6";
            assert_eq!(listed.use_proxy(host, "80"), want, "{host}");
            assert!(!all.use_proxy(host, "80"), "* exempts {host}");
        }
        assert!(NoProxy::parse(":1").use_proxy("example.com", "80"));
        // proxyForURLTests' last case: a zone makes the host an address, which no domain
        // entry matches.
        assert!(NoProxy::parse("example.com").use_proxy("1000::%.example.com", "123"));
    }

    #[test]
    fn split_host_port_as_go() {
        assert_eq!(split_host_port("a.b:80"), Some(("a.b", "80")));
        assert_eq!(split_host_port("[::1]:443"), Some(("::1", "443")));
        assert_eq!(split_host_port("a.b:"), Some(("a.b", "")));
        for bad in ["a.b", "::1", "[::1]", "[::1]x:1", "a]:1", "[a:1", "a[b]:1"] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
    }
}
