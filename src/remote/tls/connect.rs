//! The driver's side of TLS: a rustls handshake on the socket rust-postgres opened, the stream
//! it reads and writes afterwards, the channel-binding data SCRAM-SHA-256-PLUS signs
//! (`tls-server-end-point`, RFC 5929), and a record of whether a handshake completed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use ring::digest;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Makes one handshake per connection attempt with the same configuration.
#[derive(Clone)]
pub struct Connector {
    config: Arc<ClientConfig>,
}

impl Connector {
    pub fn new(config: Arc<ClientConfig>) -> Connector {
        Connector { config }
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Handshake;
    type Error = io::Error;

    /// `host` is the connection's host: a name is sent as SNI and checked by `verify-full`, an
    /// IP address is checked against the certificate's IP addresses and sends no SNI.
    fn make_tls_connect(&mut self, host: &str) -> io::Result<Handshake> {
        let name = ServerName::try_from(host)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?
            .to_owned();
        Ok(Handshake {
            config: self.config.clone(),
            name,
        })
    }
}

pub struct Handshake {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> TlsConnect<S> for Handshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Boxed<io::Result<Stream<S>>>;

    fn connect(self, socket: S) -> Self::Future {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move { Ok(Stream(connector.connect(self.name, socket).await?)) })
    }
}

/// The encrypted stream.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        let (_, session) = self.0.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| server_end_point(cert))
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

/// `tls-server-end-point`: the server certificate's hash, with the hash function of the
/// certificate's signature, SHA-256 in place of MD5 and SHA-1 (RFC 5929 section 4.1), as the
/// server computes it. `None` for a signature without one hash function (Ed25519, RSA-PSS),
/// where PostgreSQL offers no channel binding either.
fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04]; // 1.2.840.10045.4
    let oid = signature_algorithm(cert)?;
    let algorithm = match (oid.strip_prefix(RSA), oid.strip_prefix(ECDSA)) {
        // md5, sha1, sha256 WithRSAEncryption; ecdsa-with-SHA1, -SHA256
        (Some([4 | 5 | 11]), _) | (_, Some([1] | [3, 2])) => &digest::SHA256,
        (Some([12]), _) | (_, Some([3, 3])) => &digest::SHA384,
        (Some([13]), _) | (_, Some([3, 4])) => &digest::SHA512,
        _ => return None,
    };
    Some(digest::digest(algorithm, cert).as_ref().to_vec())
}

/// The OID of `Certificate.signatureAlgorithm` (X.509: a SEQUENCE of the to-be-signed
/// SEQUENCE, then the algorithm's SEQUENCE, which starts with its OID).
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let (SEQUENCE, certificate, _) = der_element(cert)? else {
        return None;
    };
    let (SEQUENCE, _, after_tbs) = der_element(certificate)? else {
        return None;
    };
    let (SEQUENCE, algorithm, _) = der_element(after_tbs)? else {
        return None;
    };
    match der_element(algorithm)? {
        (OID, oid, _) => Some(oid),
        _ => None,
    }
}

/// Splits the first DER element off `der`: its tag, its contents and what follows it.
fn der_element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let width = usize::from(first & 0x7f);
        if width == 0 || width > 4 || rest.len() < width {
            return None;
        }
        let (bytes, rest) = rest.split_at(width);
        let len = bytes.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        (len, rest)
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
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

impl<S, T> TlsConnect<S> for RecordedConnect<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = Boxed<Result<T::Stream, T::Error>>;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's outline: SEQUENCE { SEQUENCE (to be signed), SEQUENCE { OID }, BIT STRING }.
    fn outline(oid: &[u8]) -> Vec<u8> {
        let mut algorithm = vec![0x06, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        let mut body = vec![0x30, 0x03, 0x02, 0x01, 0x02, 0x30, algorithm.len() as u8];
        body.extend_from_slice(&algorithm);
        body.extend_from_slice(&[0x03, 0x01, 0x00]);
        let mut cert = vec![0x30, 0x81, body.len() as u8];
        cert.extend_from_slice(&body);
        cert
    }

    #[test]
    fn the_end_point_hash_follows_the_signature_algorithm() {
        let ecdsa_sha384 = outline(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
        let rsa_sha1 = outline(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]);
        let rsa_sha512 = outline(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d]);
        let ed25519 = outline(&[0x2b, 0x65, 0x70]);
        let hash = |cert: &[u8], algorithm| digest::digest(algorithm, cert).as_ref().to_vec();
        assert_eq!(
            server_end_point(&ecdsa_sha384),
            Some(hash(&ecdsa_sha384, &digest::SHA384))
        );
        assert_eq!(
            server_end_point(&rsa_sha1),
            Some(hash(&rsa_sha1, &digest::SHA256))
        );
        assert_eq!(
            server_end_point(&rsa_sha512),
            Some(hash(&rsa_sha512, &digest::SHA512))
        );
        assert_eq!(server_end_point(&ed25519), None);
    }

    #[test]
    fn truncated_or_malformed_der_gives_no_hash() {
        let cert = outline(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
        for end in 0..cert.len() {
            assert_eq!(server_end_point(&cert[..end]), None, "cut at {end}");
        }
        assert_eq!(der_element(&[0x30, 0x80]), None);
        assert_eq!(der_element(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    }
}
