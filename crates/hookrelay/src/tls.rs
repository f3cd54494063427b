//! TLS as the command-line clients use it (`admin`, `events`, `send`,
//! `listen`): the `--ca-file` roots, and the one TLS failure new users
//! meet that needs words: a certificate made the usual `openssl req
//! -x509` way is a CA (`basicConstraints CA:TRUE`) and rustls refuses a CA
//! as the server's own certificate (`CaUsedAsEndEntity`), which without a
//! hint reads as "is the relay running?".

use std::path::Path;

use anyhow::Context as _;

/// What to tell the user when a relay's certificate is a CA.
pub(crate) use agent::CA_AS_LEAF;

/// The certificates of a PEM file, as roots for `reqwest`.
pub(crate) fn ca_certificates(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("--ca-file {}: cannot read it", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("--ca-file {}: not a PEM certificate", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("--ca-file {}: holds no certificate", path.display());
    }
    Ok(certs)
}

/// A sentence for `err` when it is a TLS failure that has one.
pub(crate) fn hint(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut source = Some(err);
    while let Some(e) = source {
        let text = format!("{e} {e:?}");
        if text.contains("CaUsedAsEndEntity") {
            return Some(CA_AS_LEAF);
        }
        source = e.source();
    }
    None
}
