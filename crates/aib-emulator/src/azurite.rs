//! The Azurite child process that stores blobs behind the emulator's blob front.
//!
//! Azurite can only host accounts listed in `AZURITE_ACCOUNTS` at start, so the emulator starts
//! it with the configured names plus a pool; an ARM-created account either uses its own name (when
//! listed) or borrows a pool account. Azurite runs in `--oauth basic` mode over HTTPS with the
//! emulator's own certificate, so the blob front can pass bearer tokens straight through. The
//! child is killed when the handle drops (also on panic unwinding), so no Azurite outlives a test.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use url::Url;

/// How the blob front reaches Azurite.
#[derive(Clone, Debug)]
pub(crate) struct Backend {
    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub base: Url,
    pub client: reqwest::Client,
}

/// The running child; killed on drop.
pub(crate) struct AzuriteProcess {
    child: Child,
}

impl Drop for AzuriteProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        // Reap it so no zombie stays behind even when the runtime is shutting down.
        let _ = self.child.try_wait();
    }
}

/// Finds the Azurite blob server: `AIB_AZURITE`, then `azurite-blob`/`azurite` on PATH, then
/// `<workspace>/.tools/npm/node_modules/.bin/`.
pub(crate) fn find_azurite() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("AIB_AZURITE") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(prefer_blob_only(&p));
        }
        bail!(
            "AIB_AZURITE points at {}, which does not exist",
            p.display()
        );
    }
    if let Ok(p) = which::which("azurite-blob") {
        return Ok(p);
    }
    if let Ok(p) = which::which("azurite") {
        return Ok(prefer_blob_only(&p));
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/npm/node_modules/.bin");
    for name in ["azurite-blob", "azurite"] {
        let p = ws.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "Azurite not found: set AIB_AZURITE, put azurite on PATH, or install the pinned test tools \
         with scripts/test (or `npm ci` in tools/npm, then copy to .tools/npm)"
    )
}

fn prefer_blob_only(p: &Path) -> PathBuf {
    let sibling = p.with_file_name("azurite-blob");
    if sibling.is_file() {
        sibling
    } else {
        p.to_path_buf()
    }
}

/// Starts Azurite on a free loopback port with TLS and basic OAuth; waits until it listens.
pub(crate) async fn start(
    workdir: &Path,
    cert: &Path,
    key: &Path,
    ca_pem: &[u8],
    accounts: &[(String, String)],
) -> Result<(AzuriteProcess, Backend)> {
    let exe = find_azurite()?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        l.local_addr()?.port()
    };
    let data = workdir.join("azurite");
    std::fs::create_dir_all(&data)?;
    let env_accounts = accounts
        .iter()
        .map(|(n, k)| format!("{n}:{k}"))
        .collect::<Vec<_>>()
        .join(";");
    let blob_only = exe
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("azurite-blob"));
    let mut cmd = Command::new(&exe);
    if blob_only {
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()]);
    } else {
        cmd.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--queuePort",
            "0",
            "--tablePort",
            "0",
        ]);
    }
    // In memory: nothing outlives the emulator (Azurite refuses --location with it).
    cmd.args([
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--inMemoryPersistence",
    ])
    .arg("--cert")
    .arg(cert)
    .arg("--key")
    .arg(key)
    .args(["--oauth", "basic", "--silent"])
    .env("AZURITE_ACCOUNTS", env_accounts)
    .current_dir(&data)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only calls prctl, which is
    // async-signal-safe. The kernel then kills Azurite when the thread that spawned it ends,
    // even if the emulator is SIGKILLed and never runs its Drop.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting Azurite ({})", exe.display()))?;
    let mut proc = AzuriteProcess { child };

    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        if let Ok(Some(status)) = proc.child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = proc.child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let _ = e.read_to_string(&mut err).await;
            }
            bail!("Azurite ({}) exited with {status}: {err}", exe.display());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!(
                "Azurite ({}) did not listen on port {port} within 30 s",
                exe.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ca = reqwest::Certificate::from_pem(ca_pem).context("loading the test CA")?;
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .no_proxy()
        .build()
        .context("building the Azurite client")?;
    let base = Url::parse(&format!("https://127.0.0.1:{port}"))?;
    Ok((proc, Backend { base, client }))
}
