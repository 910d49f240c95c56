//! The private CA for `--mtls`, generated at run time by the project's own
//! command (`microservices certs`, or `up --mtls`), never committed: a CA
//! certificate and one certificate per service, valid for `localhost`,
//! `127.0.0.1` and the service's name, usable as server and as client
//! (every service is both). Keys are written readable by this user only.
//!
//! Then: rustls configurations with one crypto provider (ring) for the
//! gRPC servers and clients (tonic) and for the HTTP/JSON hop (hyper +
//! tokio-rustls server, reqwest client), each side requiring and checking
//! the other's certificate.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// Makes ring the process's rustls crypto provider (idempotent). reqwest
/// is built with `rustls-no-provider` (its bundled provider needs a C
/// toolchain for aws-lc), and then every reqwest client, TLS or not,
/// needs a process default before it is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Where a PKI lives and what it holds.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// Writes a secret readable by this user only.
pub(crate) fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

impl Pki {
    /// A PKI in `dir` (see [`Pki::generate`]).
    pub fn at(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Makes a fresh CA and one certificate per name in `dir`, replacing
    /// what was there.
    pub fn generate(dir: &Path, names: &[&str]) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            "microservices private CA (generated at run time)",
        );
        ca_params.distinguished_name = dn;
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
        std::fs::write(dir.join("ca.pem"), ca.pem())?;
        for name in names {
            let mut params =
                CertificateParams::new(vec!["localhost".to_owned(), (*name).to_owned()])?;
            params
                .subject_alt_names
                .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, *name);
            params.distinguished_name = dn;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &ca)?;
            std::fs::write(dir.join(format!("{name}.pem")), cert.pem())?;
            write_private(&dir.join(format!("{name}.key")), &key.serialize_pem())?;
        }
        Ok(Self::at(dir))
    }

    fn read(&self, file: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.dir.join(file);
        std::fs::read(&path)
            .with_context(|| format!("reading {} (run `microservices certs`?)", path.display()))
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> anyhow::Result<Vec<u8>> {
        self.read("ca.pem")
    }

    /// `name`'s certificate and key, PEM.
    pub fn identity_pem(&self, name: &str) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
        Ok((
            self.read(&format!("{name}.pem"))?,
            self.read(&format!("{name}.key"))?,
        ))
    }

    /// tonic server TLS: `name`'s identity, clients must present a
    /// certificate from the CA.
    pub fn grpc_server(&self, name: &str) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        let (cert, key) = self.identity_pem(name)?;
        Ok(tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert, key))
            .client_ca_root(tonic::transport::Certificate::from_pem(self.ca_pem()?)))
    }

    /// tonic client TLS: trust the CA, present `name`'s certificate, expect
    /// the server to be `server`.
    pub fn grpc_client(
        &self,
        name: &str,
        server: &str,
    ) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
        let (cert, key) = self.identity_pem(name)?;
        Ok(tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(self.ca_pem()?))
            .identity(tonic::transport::Identity::from_pem(cert, key))
            .domain_name(server))
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn certs(pem: &[u8]) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
        use rustls::pki_types::pem::PemObject;
        Ok(rustls::pki_types::CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>()?)
    }

    fn key(pem: &[u8]) -> anyhow::Result<rustls::pki_types::PrivateKeyDer<'static>> {
        use rustls::pki_types::pem::PemObject;
        Ok(rustls::pki_types::PrivateKeyDer::from_pem_slice(pem)?)
    }

    fn roots(&self) -> anyhow::Result<Arc<rustls::RootCertStore>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in Self::certs(&self.ca_pem()?)? {
            roots.add(cert)?;
        }
        Ok(Arc::new(roots))
    }

    /// rustls server config for the HTTP/JSON hop (client certificates
    /// from the CA required).
    pub fn http_server(&self, name: &str) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let (cert, key) = self.identity_pem(name)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            self.roots()?,
            Self::provider(),
        )
        .build()?;
        let mut config = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(Self::certs(&cert)?, Self::key(&key)?)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A TLS client config that trusts nobody: for clients that only
    /// ever speak plain HTTP, so they need no system trust roots.
    pub fn no_roots() -> anyhow::Result<rustls::ClientConfig> {
        Ok(
            rustls::ClientConfig::builder_with_provider(Self::provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    /// A reqwest client for the HTTP/JSON hop: trusts only the CA and
    /// presents `name`'s certificate.
    pub fn http_client(
        &self,
        name: &str,
        builder: reqwest::ClientBuilder,
    ) -> anyhow::Result<reqwest::ClientBuilder> {
        let (cert, key) = self.identity_pem(name)?;
        let config = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(Self::certs(&cert)?, Self::key(&key)?)?;
        Ok(builder.tls_backend_preconfigured(config))
    }
}

/// GETs an https:// `url` over mutual TLS, presenting `name`'s certificate
/// from the PKI in `dir`; Ok on a 2xx within `timeout`. The health probe
/// of a service under `--mtls` (Kubernetes runs it in the container: the
/// kubelet's own probes cannot present a client certificate).
pub fn probe_tls(
    url: &str,
    dir: &Path,
    name: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        url.starts_with("https://"),
        "{url}: a probe with a certificate needs an https:// URL"
    );
    install_crypto_provider();
    let client = Pki::at(dir)
        .http_client(name, reqwest::Client::builder())?
        .timeout(timeout)
        .build()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let status = runtime
        .block_on(async { client.get(url).send().await.map(|r| r.status()) })
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(status.is_success(), "{url}: answered {status}");
    Ok(())
}

/// Serves `router` over TLS on `listener` until `shutdown`: the HTTP/JSON
/// service under `--mtls`. Each connection is handshaken in its own task.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, router, shutdown) = (acceptor.clone(), router.clone(), shutdown.clone());
        connections.spawn(async move {
            let Ok(tls) = acceptor.accept(stream).await else {
                metrics::counter!("tls_handshake_failures_total").increment(1);
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    connections.close();
    connections.wait().await;
    Ok(())
}
