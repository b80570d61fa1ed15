//! Runs the real `akv-csi-provider` binary as a child process for tests, the demo and the
//! benchmark: a socket in a private temporary directory, JSON logs at the most verbose level
//! captured to a file (so tests can assert that no secret ever reaches them), and a gRPC
//! channel to the socket that behaves like the driver's (authority `localhost`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// A running provider; killed when dropped.
pub struct ProviderProcess {
    child: tokio::process::Child,
    /// What was started, to start it again after a crash.
    command: Launch,
    dir: tempfile::TempDir,
    socket: PathBuf,
    log: PathBuf,
    /// Port of the HTTP `/healthz` endpoint.
    pub healthz_port: u16,
    /// Port of the Prometheus `/metrics` endpoint.
    pub metrics_port: u16,
}

/// A binary, its arguments and the environment variables it gets besides the test's own.
#[derive(Debug, Clone, Default)]
struct Launch {
    binary: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ProviderProcess {
    /// Starts `binary` with `args` (plus socket, ports and logging flags) and waits until it
    /// listens.
    pub async fn start(binary: &Path, args: &[String]) -> std::io::Result<ProviderProcess> {
        ProviderProcess::start_with_env(binary, args, &[]).await
    }

    /// Like [`ProviderProcess::start`], with `env` added to the environment (what a pod's
    /// environment has, e.g. `KUBERNETES_SERVICE_HOST`).
    pub async fn start_with_env(
        binary: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> std::io::Result<ProviderProcess> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("azure.sock");
        ProviderProcess::spawn(binary, dir, socket, args, "-v=5", env).await
    }

    /// Like [`ProviderProcess::start`] at the default log level (for measurements).
    pub async fn start_quiet(binary: &Path, args: &[String]) -> std::io::Result<ProviderProcess> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("azure.sock");
        ProviderProcess::spawn(binary, dir, socket, args, "-v=0", &[]).await
    }

    /// Like [`ProviderProcess::start`], with the socket at `socket` (logs go into `dir`).
    pub async fn start_at(
        binary: &Path,
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[String],
    ) -> std::io::Result<ProviderProcess> {
        ProviderProcess::spawn(binary, dir, socket, args, "-v=5", &[]).await
    }

    async fn spawn(
        binary: &Path,
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[String],
        verbosity: &str,
        env: &[(String, String)],
    ) -> std::io::Result<ProviderProcess> {
        let log = dir.path().join("provider.log");
        let mut argv = vec![
            format!("--endpoint=unix://{}", socket.display()),
            "--healthz-port=0".to_string(),
            "--prometheus-port=0".to_string(),
            verbosity.to_string(),
            "--log-format-json".to_string(),
        ];
        argv.extend(args.iter().cloned());
        let command = Launch {
            binary: binary.to_path_buf(),
            args: argv,
            env: env.to_vec(),
        };
        let child = launch(&command, &log)?;
        let mut process = ProviderProcess {
            child,
            command,
            dir,
            socket,
            log,
            healthz_port: 0,
            metrics_port: 0,
        };
        process.wait_listening().await?;
        Ok(process)
    }

    /// Kills the process as a crash or an OOM kill would (SIGKILL: no cleanup, the socket file
    /// stays) and starts it again with the same arguments, as the DaemonSet restarts it.
    pub async fn crash_and_restart(&mut self) -> std::io::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        std::fs::rename(&self.log, self.log.with_extension("log.1"))?;
        self.child = launch(&self.command, &self.log)?;
        self.wait_listening().await
    }

    async fn wait_listening(&mut self) -> std::io::Result<()> {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "provider exited with {status}: {}",
                    self.logs()
                )));
            }
            let current = std::fs::read_to_string(&self.log).unwrap_or_default();
            for line in current.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if v["message"] == "listening" {
                    self.healthz_port = v["healthz_port"].as_u64().unwrap_or(0) as u16;
                    self.metrics_port = v["metrics_port"].as_u64().unwrap_or(0) as u16;
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        Err(std::io::Error::other(format!(
            "provider did not start listening: {}",
            self.logs()
        )))
    }

    /// Process id, for resource measurements.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temporary directory holding the socket and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the provider logged so far (before a restart too).
    pub fn logs(&self) -> String {
        let before = std::fs::read_to_string(self.log.with_extension("log.1")).unwrap_or_default();
        before + &std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A gRPC channel to the provider's socket, as the driver dials it.
    pub async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        connect(&self.socket).await
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Fetches `/metrics`.
    pub async fn metrics(&self) -> std::io::Result<String> {
        http_get(self.metrics_port, "/metrics")
            .await
            .map(|(_, body)| body)
    }

    /// Fetches `/healthz`: status code and body.
    pub async fn healthz(&self) -> std::io::Result<(u16, String)> {
        http_get(self.healthz_port, "/healthz").await
    }
}

fn launch(command: &Launch, log: &Path) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(&command.binary)
        .args(&command.args)
        .envs(command.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(log)?))
        .kill_on_drop(true)
        .spawn()
}

/// Connects to a provider socket with authority `localhost`, as the driver does.
pub async fn connect(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
}

/// A minimal HTTP/1.0 GET on loopback, enough for /metrics and /healthz.
async fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
