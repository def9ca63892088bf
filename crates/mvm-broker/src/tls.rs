//! The one TLS client configuration every mediated request uses: rustls
//! on ring, the system's roots plus the operator's CA bundle, HTTP/2 and
//! HTTP/1.1 offered by ALPN.

use std::sync::Arc;

use rustls::RootCertStore;

use crate::SetupError;

pub(crate) fn client_config(extra_roots_pem: &[u8]) -> Result<rustls::ClientConfig, SetupError> {
    let mut roots = RootCertStore::empty();
    // The system store may hold a few certificates rustls cannot parse (and
    // be unreadable in part); those are skipped, as every client does.
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("skipping part of the system certificate store: {e}");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("system roots: {added} added, {ignored} skipped");
    if !extra_roots_pem.is_empty() {
        let mut n = 0;
        for cert in rustls_pemfile::certs(&mut &extra_roots_pem[..]) {
            let cert = cert.map_err(|e| SetupError::Roots(format!("reading the bundle: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| SetupError::Roots(format!("certificate {}: {e}", n + 1)))?;
            n += 1;
        }
        if n == 0 {
            return Err(SetupError::Roots(
                "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
            ));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Roots(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        let e = client_config(b"not pem").unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        assert!(client_config(b"").is_ok());
    }
}
