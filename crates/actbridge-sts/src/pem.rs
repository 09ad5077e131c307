//! PEM for keys, written one way: the `pem` crate, LF line endings, 64-column base64.
//! The token service's own key, the tests' and the benches' keys all go through here.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};

/// `der` in a PEM block labelled `label` (`PRIVATE KEY`, `PUBLIC KEY`, …).
pub fn encode(label: &str, der: &[u8]) -> String {
    let lf = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der.to_vec()), lf)
}

/// A freshly generated RSA-2048 private key, PKCS#8 PEM (what jsonwebtoken's
/// `from_rsa_pem` and a GitHub App's key file take).
pub fn fresh_rsa_private_key() -> Result<String, String> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|e| format!("RSA-2048 generation failed: {e}"))?;
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair)
        .map_err(|e| format!("PKCS#8 encoding failed: {e}"))?;
    Ok(encode("PRIVATE KEY", der.as_ref()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_block_has_its_label_and_64_column_lf_lines_and_reads_back() {
        let der: Vec<u8> = (0..=255).collect();
        let text = super::encode("PUBLIC KEY", &der);
        assert!(text.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{text}");
        assert!(text.ends_with("-----END PUBLIC KEY-----\n"), "{text}");
        assert!(!text.contains('\r'));
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(pem::parse(&text).unwrap().contents(), der.as_slice());
        let key = super::fresh_rsa_private_key().unwrap();
        jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes()).unwrap();
    }
}
