//! The serving certificate: loaded from PEM files, chosen per handshake from a swappable slot,
//! so a rotated Secret takes effect on the next connection without a restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::x509;

/// Where the certificate chain and its key live (`tls.crt`/`tls.key` of a mounted Secret).
#[derive(Debug, Clone)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no PEM certificate found in {0}")]
    NoCertificate(PathBuf),
    #[error("cannot read the certificates in {path}")]
    BadCertificate {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("cannot read a private key in {path}")]
    BadKey {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("the private key in {path} is not usable")]
    UnusableKey {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot read the expiry of {path}")]
    Expiry {
        path: PathBuf,
        #[source]
        source: x509::X509Error,
    },
    #[error("cannot build the TLS configuration")]
    Config(#[source] rustls::Error),
}

/// A certificate ready to serve, and when it expires (Unix seconds).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub key: Arc<CertifiedKey>,
    pub not_after: i64,
}

impl CertFiles {
    /// Parses the PEM contents of the two files and checks that the key matches the certificate.
    pub fn parse(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<Loaded, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::BadCertificate {
                path: self.cert.clone(),
                source,
            })?;
        let Some(leaf) = chain.first() else {
            return Err(TlsError::NoCertificate(self.cert.clone()));
        };
        let not_after = x509::not_after(leaf).map_err(|source| TlsError::Expiry {
            path: self.cert.clone(),
            source,
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::BadKey {
            path: self.key.clone(),
            source,
        })?;
        let key = CertifiedKey::from_der(chain, key, &provider()).map_err(|source| {
            TlsError::UnusableKey {
                path: self.key.clone(),
                source,
            }
        })?;
        Ok(Loaded {
            key: Arc::new(key),
            not_after,
        })
    }
}

impl Loaded {
    /// Says so in the log when the certificate is already expired: it is still served (the
    /// clock may be wrong, and nothing else could be served), but the API server will refuse it.
    pub fn warn_if_expired(&self, now: i64) {
        if self.not_after <= now {
            tracing::warn!(
                not_after = self.not_after,
                "the serving certificate has expired; the API server will refuse it"
            );
        }
    }
}

/// The certificate in use; every handshake reads it, the reloader replaces it.
#[derive(Debug)]
pub struct LiveCert(RwLock<Arc<CertifiedKey>>);

impl LiveCert {
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        LiveCert(RwLock::new(key))
    }

    pub fn replace(&self, key: Arc<CertifiedKey>) {
        // A poisoned lock only means a writer panicked mid-assignment of an Arc; the value is
        // still a whole Arc, so keep going.
        *self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = key;
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// TLS 1.2 and 1.3, ALPN `h2` then `http/1.1` (the API server reuses connections and may speak
/// HTTP/2), certificate from `live` at each handshake.
pub fn server_config(live: Arc<LiveCert>) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(live);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The one crypto provider of the project (ring), whatever the process installed by default.
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
