//! A real forward proxy for the tests: Debian's `tinyproxy`, one instance per test on a free
//! loopback port, with its own configuration and log in a temporary directory. Its log is the
//! evidence of what went through it: one `Request (file descriptor N): CONNECT host:443
//! HTTP/1.1` line per tunnel, one `GET http://…` line per plain-HTTP request.
//!
//! The provider asks the proxy for the fakes by their real names (`login.akv.test`,
//! `kv-test.vault.akv.test`): a proxied destination is resolved by the proxy, so `--resolve`
//! does not apply to it. Those names resolve nowhere, and tinyproxy only asks the system
//! resolver, so tinyproxy sends every request to an upstream proxy (its `Upstream http`
//! directive): [`Relay`], a few lines in this kit that stand in for DNS and the network behind
//! the proxy. The relay maps each name to the fake serving it, as `--resolve` does for direct
//! connections, and copies bytes. Everything the provider sends, and everything tinyproxy checks
//! (`BasicAuth` credentials, `ConnectPort`) and logs, is the real thing.
//!
//! When tinyproxy is not installed, starting one panics: the proxy tests fail rather than skip.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The variables the provider reads for proxies; tests start it without inherited ones.
pub const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// A running tinyproxy (killed when dropped) and its relay.
pub struct Tinyproxy {
    pub addr: SocketAddr,
    child: tokio::process::Child,
    log: PathBuf,
    _relay: Relay,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy, allowing CONNECT to port 443 only, and, with `credentials`, only for
    /// clients that present them (tinyproxy accepts `[-A-Za-z0-9._]` in either). `routes` maps
    /// host patterns (a name or `*.suffix`) to the addresses the relay connects to.
    pub async fn start(
        routes: Vec<(String, SocketAddr)>,
        credentials: Option<(&str, &str)>,
    ) -> Tinyproxy {
        let relay = Relay::start(routes).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("tinyproxy.log");
        // tinyproxy cannot listen on port 0: take a free port and retry if another process
        // takes it first.
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("tinyproxy.conf");
            let mut text = format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\n\
                 LogFile \"{}\"\nLogLevel Info\nPidFile \"{}\"\n\
                 ConnectPort 443\nUpstream http {}\n",
                log.display(),
                dir.path().join("tinyproxy.pid").display(),
                relay.addr,
            );
            if let Some((user, password)) = credentials {
                text.push_str(&format!("BasicAuth {user} {password}\n"));
            }
            std::fs::write(&config, text).expect("write tinyproxy.conf");
            let mut child = spawn(&config, &dir.path().join("tinyproxy.out"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if listening(&mut child, addr).await {
                return Tinyproxy {
                    addr,
                    child,
                    log,
                    _relay: relay,
                    _dir: dir,
                };
            }
            let _ = child.kill().await;
        }
        panic!(
            "tinyproxy did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Everything tinyproxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The request lines tinyproxy received, in order: `CONNECT host:port HTTP/1.1`,
    /// `GET http://host/path HTTP/1.1`.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("]: Request (file descriptor "))
            .filter_map(|(_, rest)| rest.split_once("): "))
            .map(|(_, request)| request.to_string())
            .collect()
    }

    /// Whether the process is still running (a crash would make every test result moot).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn spawn(config: &std::path::Path, output: &std::path::Path) -> tokio::process::Child {
    let out = std::fs::File::create(output).expect("tinyproxy output file");
    let err = out.try_clone().expect("tinyproxy output file");
    match tokio::process::Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "tinyproxy is not installed; the proxy tests need it: apt-get install tinyproxy-bin \
             (./scripts/test and .ci/run install it)"
        ),
        Err(e) => panic!("cannot start tinyproxy: {e}"),
    }
}

/// Waits until `addr` accepts connections; false if the process exits first or never listens.
async fn listening(child: &mut tokio::process::Child, addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("local addr").port()
}

/// The upstream of tinyproxy: answers `CONNECT host:port` and forwards absolute-form requests
/// (`GET http://host/…`) to the address its routes give for `host`; 502 for unknown names.
struct Relay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    async fn start(routes: Vec<(String, SocketAddr)>) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let routes = Arc::new(routes);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(relay(stream, routes.clone()));
            }
        });
        Relay { addr, task }
    }
}

/// The address `host` routes to: an exact name, or the longest matching `*.suffix`.
fn route(routes: &[(String, SocketAddr)], host: &str) -> Option<SocketAddr> {
    let host = host.to_ascii_lowercase();
    routes
        .iter()
        .filter(|(pattern, _)| match pattern.strip_prefix('*') {
            Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
            None => *pattern == host,
        })
        .max_by_key(|(pattern, _)| pattern.len())
        .map(|(_, addr)| *addr)
}

async fn relay(mut client: TcpStream, routes: Arc<Vec<(String, SocketAddr)>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) if head.len() + n <= 64 * 1024 => head.extend_from_slice(&buf[..n]),
            Ok(_) => return,
        }
    }
    let line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authority = match method {
        "CONNECT" => target,
        _ => target
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or(""),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let upstream = match route(&routes, host) {
        Some(addr) => TcpStream::connect(addr).await.ok(),
        None => None,
    };
    let Some(mut upstream) = upstream else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let forwarded = if method == "CONNECT" {
        let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
        let established = b"HTTP/1.1 200 Connection established\r\n\r\n";
        client.write_all(established).await.is_ok()
            && upstream.write_all(&head[end..]).await.is_ok()
    } else {
        upstream.write_all(&head).await.is_ok()
    };
    if forwarded {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// A proxy that accepts connections and never answers: the stalled proxy of the tests.
pub struct StallingProxy {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StallingProxy {
    pub async fn start() -> StallingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        StallingProxy { addr, task }
    }
}
