//! The test CA and the HTTPS serving loop.
//!
//! Clients (the product, Azure crates, Python SDKs) refuse bearer tokens over plain HTTP, so the
//! emulator serves HTTPS with a leaf certificate for 127.0.0.1, ::1 and localhost signed by a CA
//! it creates (or reloads from a state dir). Clients trust `ca.pem` through `SSL_CERT_FILE`.
//! The serving loop is hand-made on hyper-util so a fault knob can drop a connection on purpose.

use anyhow::{Context, Result};
use axum::Router;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower::ServiceExt;

use crate::knobs::{Fault, Knobs, RequestLog, RequestRecord};

/// PEM files of the CA and the server leaf, as written into the state dir.
pub(crate) struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Loads `ca.pem`, `cert.pem`, `key.pem` from `dir` when all three exist, else creates them.
pub(crate) fn load_or_create(dir: &Path) -> Result<TlsFiles> {
    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    if files.ca.is_file() && files.cert.is_file() && files.key.is_file() {
        return Ok(files);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca_key = rcgen::KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "aib-emulator test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).context("signing the CA")?;

    let leaf_key = rcgen::KeyPair::generate().context("generating the server key")?;
    let mut leaf_params = rcgen::CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "aib-emulator");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .context("signing the server certificate")?;

    std::fs::write(&files.ca, ca.pem())?;
    // The leaf file carries the chain so clients that only trust the CA can build the path.
    std::fs::write(&files.cert, leaf.pem())?;
    std::fs::write(&files.key, leaf_key.serialize_pem())?;
    Ok(files)
}

/// A rustls server config from the PEM files (aws-lc-rs chosen explicitly: the workspace may
/// enable several rustls providers, and then the implicit default panics).
pub(crate) fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .context("reading cert.pem")?
        .collect::<Result<Vec<_>, _>>()
        .context("parsing cert.pem")?;
    let key = PrivateKeyDer::from_pem_file(&files.key).context("reading key.pem")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("building the TLS server config")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}
impl std::error::Error for Dropped {}

/// Serves `router` over TLS on `listener` until the returned task is aborted (which also ends
/// every open connection, since they live in the task's JoinSet).
pub(crate) fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    knobs: Knobs,
    log: RequestLog,
) -> tokio::task::JoinHandle<()> {
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(_) => continue,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            let knobs = knobs.clone();
            let log = log.clone();
            // As Azure's front ends do: without it a response written in two segments waits
            // for the client's delayed ACK (~40 ms on Linux) behind Nagle's algorithm.
            let _ = tcp.set_nodelay(true);
            conns.spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let router = router.clone();
                        let knobs = knobs.clone();
                        let log = log.clone();
                        async move {
                            if knobs.fire(Fault::Drop, knobs.get().drop_rate) {
                                log.push(RequestRecord::arriving(
                                    req.method(),
                                    req.uri(),
                                    req.headers(),
                                ));
                                return Err(Dropped);
                            }
                            let resp = router.oneshot(req.map(axum::body::Body::new)).await;
                            match resp {
                                Ok(r) => Ok(r),
                                Err(never) => match never {},
                            }
                        }
                    });
                let io = hyper_util::rt::TokioIo::new(tls);
                let builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                let _ = builder.serve_connection_with_upgrades(io, svc).await;
            });
        }
    })
}
