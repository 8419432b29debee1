//! TLS for `wss://` relays: the system's roots (and `SSL_CERT_FILE`), plus
//! a private CA the user names with `--ca-cert`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A client config trusting the system's roots and, if given, the CA
/// certificates in `ca` (PEM).
pub fn client_config(ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca {
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "--ca-cert {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "--ca-cert {}: not a usable CA certificate: {e}",
                    path.display()
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What to tell the user about a failed TLS connection, if it is one.
pub fn explain(error: &str, url: &str) -> Option<String> {
    if error.contains("UnknownIssuer") || error.contains("unknown issuer") {
        return Some(
            "the relay's certificate is not signed by a CA this machine trusts (UnknownIssuer): if the relay uses a private CA, pass --ca-cert CA.pem (or set SSL_CERT_FILE)"
                .to_string(),
        );
    }
    if error.contains("NotValidForName") {
        return Some(format!(
            "the relay's certificate is not for the host in {url}: connect by the name the certificate was issued to"
        ));
    }
    if url.starts_with("wss://")
        && (error.contains("InvalidContentType")
            || error.contains("corrupt message")
            || error.contains("InvalidMessage"))
    {
        return Some("this relay doesn't speak TLS: use ws:// instead of wss://".into());
    }
    if error.contains("Expired") {
        return Some("the relay's certificate has expired".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_explained() {
        let e = "invalid peer certificate: UnknownIssuer";
        assert!(explain(e, "wss://h").unwrap().contains("--ca-cert"));
        let plain = "IO error: received corrupt message of type InvalidContentType";
        assert!(explain(plain, "wss://h")
            .unwrap()
            .contains("doesn't speak TLS"));
        assert!(explain("connection refused", "wss://h").is_none());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let err = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(err.contains("cannot read --ca-cert"));
        let empty = std::env::temp_dir().join(format!("sf-empty-{}.pem", std::process::id()));
        std::fs::write(&empty, "nothing here\n").unwrap();
        let err = client_config(Some(&empty)).unwrap_err();
        let _ = std::fs::remove_file(&empty);
        assert!(err.contains("no PEM certificate"), "{err}");
    }
}
