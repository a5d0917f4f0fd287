//! TLS client configuration on rustls: verified by default, `any-cert` on request.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::TlsSettings;

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("CA file {path} holds no certificate")]
    EmptyCaFile { path: String },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider chosen at build time (feature `tls-ring` or `tls-aws-lc`).
pub fn provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "tls-ring")]
    {
        Arc::new(rustls::crypto::ring::default_provider())
    }
    #[cfg(all(not(feature = "tls-ring"), feature = "tls-aws-lc"))]
    {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }
}

/// Builds the connector once per run; every connection shares it (and its session cache).
pub fn connector(settings: &TlsSettings) -> Result<TlsConnector, TlsConfigError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if settings.accept_any_cert {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert { provider }))
            .with_no_client_auth()
    } else if let Some(path) = &settings.ca_file {
        builder
            .with_root_certificates(load_roots(path)?)
            .with_no_client_auth()
    } else {
        let verifier = rustls_platform_verifier::Verifier::new(provider)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let shown = path.display().to_string();
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| TlsConfigError::CaFile {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for cert in iter {
        let cert = cert.map_err(|e| TlsConfigError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        roots.add(cert).map_err(|e| TlsConfigError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsConfigError::EmptyCaFile { path: shown });
    }
    Ok(roots)
}

/// The name sent as SNI and checked against the certificate: an IP address or a DNS name.
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(trimmed.to_owned())
        .map_err(|_| format!("invalid TLS server name `{host}`"))
}

/// `ssl=any-cert`: any certificate chain is accepted, but the handshake signatures are
/// still verified so the session is at least cryptographically sound.
#[derive(Debug)]
struct AnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
