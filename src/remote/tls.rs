//! TLS with libpq's semantics, on OpenSSL (the library libpq itself uses):
//! `require` encrypts without verifying, `verify-ca` checks the chain, `verify-full` checks the
//! chain and the host name. SNI is always sent with the host name (Neon routes by it).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres_openssl::MakeTlsConnector;

use super::conninfo::{ConnInfo, RootCert, SslMode};
use crate::error::{Error, Result};

/// Builds the connector for `info`'s sslmode and root certificates.
pub fn connector(info: &ConnInfo) -> Result<MakeTlsConnector> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| Error::invalid(format!("cannot set up TLS: {e}")))?;
    // TLS 1.3 sends a key share for the first group only. PostgreSQL's default ssl_ecdh_curve
    // is prime256v1, so offering X25519 first costs every connection a HelloRetryRequest: one
    // round trip more.
    builder
        .set_groups_list("P-256:X25519:P-384:P-521")
        .map_err(|e| Error::invalid(format!("cannot set up TLS: {e}")))?;
    let mode = info.effective_sslmode();
    if mode.verifies() {
        match root_cert(info)? {
            RootCert::System => builder.set_default_verify_paths().map_err(|e| {
                Error::invalid(format!("cannot load the system's trusted roots: {e}"))
            })?,
            RootCert::File(path) => {
                let pem = std::fs::read(&path).map_err(|e| {
                    Error::invalid(format!(
                        "cannot read sslrootcert file {}: {e}",
                        path.display()
                    ))
                })?;
                let certs = X509::stack_from_pem(&pem)
                    .ok()
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "sslrootcert file {} holds no PEM certificate",
                            path.display()
                        ))
                    })?;
                // Trust exactly the given roots, as libpq does, not the system's as well.
                let mut store = X509StoreBuilder::new()
                    .map_err(|e| Error::invalid(format!("cannot set up TLS: {e}")))?;
                for cert in certs {
                    store
                        .add_cert(cert)
                        .map_err(|e| Error::invalid(format!("cannot use sslrootcert: {e}")))?;
                }
                builder.set_cert_store(store.build());
            }
        }
        builder.set_verify(SslVerifyMode::PEER);
    } else {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    let check_host_name = mode == SslMode::VerifyFull;
    connector.set_callback(move |config, _domain| {
        config.set_verify_hostname(check_host_name);
        Ok(())
    });
    Ok(connector)
}

fn root_cert(info: &ConnInfo) -> Result<RootCert> {
    if let Some(root) = &info.sslrootcert {
        return Ok(root.clone());
    }
    // libpq's default location.
    let default = std::env::var_os("HOME")
        .map(|home| std::path::Path::new(&home).join(".postgresql/root.crt"))
        .filter(|p| p.exists());
    default.map(RootCert::File).ok_or_else(|| {
        Error::invalid(format!(
            "sslmode={} needs a CA to verify the server: add sslrootcert=/path/to/ca.pem, or \
             sslrootcert=system to use the system's trusted roots",
            info.sslmode.as_str()
        ))
    })
}

/// Wraps a connector to record whether a TLS handshake actually completed (with
/// `sslmode=prefer` the server may decline and the session stays in plain text).
pub struct Recorded<T> {
    inner: T,
    pub handshake_done: Arc<AtomicBool>,
}

impl<T> Recorded<T> {
    pub fn new(inner: T) -> Self {
        Recorded {
            inner,
            handshake_done: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<S, T> MakeTlsConnect<S> for Recorded<T>
where
    T: MakeTlsConnect<S>,
    <T::TlsConnect as TlsConnect<S>>::Future: Send + 'static,
{
    type Stream = T::Stream;
    type TlsConnect = RecordedConnect<T::TlsConnect>;
    type Error = T::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        Ok(RecordedConnect {
            inner: self.inner.make_tls_connect(domain)?,
            handshake_done: self.handshake_done.clone(),
        })
    }
}

pub struct RecordedConnect<T> {
    inner: T,
    handshake_done: Arc<AtomicBool>,
}

type BoxedHandshake<St, E> = Pin<Box<dyn Future<Output = Result<St, E>> + Send>>;

impl<S, T> TlsConnect<S> for RecordedConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = BoxedHandshake<T::Stream, T::Error>;

    fn connect(self, stream: S) -> Self::Future {
        let handshake = self.inner.connect(stream);
        let done = self.handshake_done;
        Box::pin(async move {
            let stream = handshake.await?;
            done.store(true, Ordering::SeqCst);
            Ok(stream)
        })
    }
}
