//! JWT-SVID clients in the realm file: the `spiffe` section and the `jwt_svid` rules name
//! their field; the JWT bundle's keys need a `kid`, and X.509 authorities are skipped.

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;

use super::support::*;
use crate::Realm;

fn err(yaml: &str) -> String {
    Realm::from_yaml_str(yaml).unwrap_err().to_string()
}

/// A JWKS file holding the test RSA key under `kid` (none: no `kid`), plus an X.509
/// authority without a `kid` (as SPIFFE bundles list them).
fn bundle(dir: &std::path::Path, kid: Option<&str>) -> String {
    let mut jwk = Jwk::from_encoding_key(&client_keys().rsa.signing, Algorithm::RS256).unwrap();
    jwk.common.key_id = kid.map(str::to_string);
    let mut x509 = serde_json::to_value(&jwk).unwrap();
    x509["use"] = "x509-svid".into();
    x509.as_object_mut().unwrap().remove("kid");
    let path = dir.join("bundle.json");
    let set = serde_json::json!({"keys": [jwk, x509]});
    std::fs::write(&path, set.to_string()).unwrap();
    path.display().to_string()
}

fn realm(client: &str, spiffe: &str) -> String {
    format!("realm: r\nclients:\n  - {client}\n{spiffe}")
}

const TECH_SVID: &str = "{client_id: 'spiffe://demo.example.com/agent/summarizer-tech', jwt_svid: true, service_account: true}";

#[test]
fn a_jwt_svid_client_needs_the_spiffe_section_its_trust_domain_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path(), Some("k1"));
    let spiffe = format!("spiffe: {{trust_domain: demo.example.com, jwt_bundle: '{b}'}}\n");
    let realm_ok = Realm::from_yaml_str(&realm(TECH_SVID, &spiffe)).unwrap();
    assert!(realm_ok.jwt_bundle().is_some());

    assert!(err(&realm(TECH_SVID, "")).contains("clients[0].jwt_svid"));
    let with_secret = "{client_id: 'spiffe://demo.example.com/agent/a', jwt_svid: true, secret: s}";
    assert!(err(&realm(with_secret, &spiffe)).contains("clients[0].jwt_svid"));
    let public = "{client_id: 'spiffe://demo.example.com/agent/a', jwt_svid: true, public: true}";
    assert!(err(&realm(public, &spiffe)).contains("clients[0].jwt_svid"));
    let elsewhere = "{client_id: 'spiffe://other.example.com/agent/a', jwt_svid: true}";
    assert!(err(&realm(elsewhere, &spiffe)).contains("clients[0].client_id"));
    let no_path = "{client_id: 'spiffe://demo.example.com/', jwt_svid: true}";
    assert!(err(&realm(no_path, &spiffe)).contains("clients[0].client_id"));
}

#[test]
fn the_spiffe_section_names_its_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(dir.path(), Some("k1"));
    let e = err(&realm(
        TECH_SVID,
        &format!("spiffe: {{trust_domain: 'spiffe://demo.example.com', jwt_bundle: '{b}'}}\n"),
    ));
    assert!(e.contains("spiffe.trust_domain"), "{e}");
    let e = err(&realm(
        TECH_SVID,
        "spiffe: {trust_domain: demo.example.com, jwt_bundle: /nonexistent/bundle.json}\n",
    ));
    assert!(
        e.contains("spiffe.jwt_bundle") && e.contains("/nonexistent/bundle.json"),
        "{e}"
    );
    let no_kid = bundle(dir.path(), None);
    let e = err(&realm(
        TECH_SVID,
        &format!("spiffe: {{trust_domain: demo.example.com, jwt_bundle: '{no_kid}'}}\n"),
    ));
    assert!(e.contains("spiffe.jwt_bundle") && e.contains("kid"), "{e}");
    let e = err(&realm(
        TECH_SVID,
        "spiffe: {trust_domain: demo.example.com, jwt_bundle: x, colour: red}\n",
    ));
    assert!(e.contains("colour"), "{e}");
}
