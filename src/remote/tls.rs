//! TLS with libpq's semantics, on rustls with ring's cryptography, so that the extension links
//! no system TLS or crypto library (docs/design.md, "A self-contained binary"): `require`
//! encrypts without verifying, `verify-ca` checks the chain, `verify-full` checks the chain and
//! the host name. SNI is sent with a host name (Neon routes by it), never with an IP address,
//! as libpq does. This file builds the client configuration for a connection string and says
//! which certificate problem ended a handshake; `verify` checks certificates, `connect` runs
//! the handshake for the driver.

mod connect;
mod verify;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ClientConfig, NamedGroup, RootCertStore};

use super::conninfo::{ConnInfo, RootCert, SslMode};
use crate::error::{Error, Result};
pub use connect::{Connector, Recorded};
use verify::Verifier;

/// What `cloud_sync_debug()` reports as the TLS implementation.
pub const BACKEND: &str = "rustls 0.23 (ring)";

/// Builds the connector for `info`'s sslmode and root certificates.
pub fn connector(info: &ConnInfo) -> Result<Connector> {
    let mode = info.effective_sslmode();
    let roots = if mode.verifies() {
        Some(match root_cert(info)? {
            RootCert::System => system_roots()?,
            RootCert::File(path) => Arc::new(file_roots(&path)?),
        })
    } else {
        None
    };
    let mut provider = rustls::crypto::ring::default_provider();
    // TLS 1.3 sends a key share for the first group only. PostgreSQL's default ssl_ecdh_curve
    // is prime256v1, so offering X25519 first costs every connection a HelloRetryRequest: one
    // round trip more.
    provider
        .kx_groups
        .sort_by_key(|group| group.name() != NamedGroup::secp256r1);
    let provider = Arc::new(provider);
    let verifier = Verifier::new(roots, mode == SslMode::VerifyFull, &provider);
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Connector::new(Arc::new(config)))
}

fn root_cert(info: &ConnInfo) -> Result<RootCert> {
    if let Some(root) = &info.sslrootcert {
        return Ok(root.clone());
    }
    // libpq's default location.
    let default = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".postgresql/root.crt"))
        .filter(|p| p.exists());
    default.map(RootCert::File).ok_or_else(|| {
        Error::invalid(format!(
            "sslmode={} needs a CA to verify the server: add sslrootcert=/path/to/ca.pem, or \
             sslrootcert=system to use the system's trusted roots",
            info.sslmode.as_str()
        ))
    })
}

/// Exactly the roots in the file, as libpq trusts them, not the system's as well. Read at every
/// connection, as libpq does, so a replaced file takes effect at once.
fn file_roots(path: &Path) -> Result<RootCertStore> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::invalid(format!(
            "cannot read sslrootcert file {}: {e}",
            path.display()
        ))
    })?;
    let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(&pem)
        .collect::<std::result::Result<_, _>>()
        .ok()
        .filter(|c: &Vec<_>| !c.is_empty())
        .ok_or_else(|| {
            Error::invalid(format!(
                "sslrootcert file {} holds no PEM certificate",
                path.display()
            ))
        })?;
    let mut store = RootCertStore::empty();
    for cert in certs {
        store
            .add(cert)
            .map_err(|e| Error::invalid(format!("cannot use sslrootcert: {e}")))?;
    }
    Ok(store)
}

/// The system's trusted roots (`sslrootcert=system`), from where OpenSSL would read them
/// (`SSL_CERT_FILE` and `SSL_CERT_DIR` included). Read once per process: parsing a few hundred
/// certificates at every connection would cost more than the handshake.
fn system_roots() -> Result<Arc<RootCertStore>> {
    static ROOTS: OnceLock<std::result::Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let why = found.errors.first().map(ToString::to_string);
                return Err(why.unwrap_or_else(|| "none found".into()));
            }
            Ok(Arc::new(store))
        })
        .clone()
        .map_err(|why| Error::invalid(format!("cannot load the system's trusted roots: {why}")))
}

/// Why the server's certificate was refused, when that ended the connection.
pub enum Rejection {
    /// The certificate is trusted but names other hosts (`verify-full` only).
    OtherHost,
    /// The certificate is not trusted, for this reason.
    Untrusted(&'static str),
}

/// Finds, in the driver's error, the certificate check that failed the handshake, if one did.
pub fn rejected_certificate(error: &(dyn std::error::Error + 'static)) -> Option<Rejection> {
    let rustls_error = std::iter::successors(Some(error), |e| e.source()).find_map(|e| {
        e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        })
    })?;
    let rustls::Error::InvalidCertificate(problem) = rustls_error else {
        return None;
    };
    Some(match problem {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Rejection::OtherHost
        }
        CertificateError::UnknownIssuer => Rejection::Untrusted("unknown issuer"),
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            Rejection::Untrusted("certificate has expired")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            Rejection::Untrusted("certificate is not yet valid")
        }
        CertificateError::BadSignature => Rejection::Untrusted("bad signature"),
        CertificateError::BadEncoding => Rejection::Untrusted("malformed certificate"),
        CertificateError::Revoked => Rejection::Untrusted("certificate revoked"),
        _ => Rejection::Untrusted("certificate rejected"),
    })
}
