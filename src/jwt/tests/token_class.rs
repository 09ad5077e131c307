//! Through a real [`Verifier`], table-driven: which token classes pass (the JOSE header
//! `typ`, Keycloak's payload `typ`, and `issuers[].token_types` overriding both), repeated
//! member names in the header and the payload, and the bounds of `exp`, `iat` and `nbf`.
//! The embedded token service publishes the keys (signing with `fuzz/issuer-key.pem`,
//! which the tests hold too), so each token is signed here over exact bytes.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::super::claims::MAX_NUMERIC_DATE;
use super::super::{AudienceProfile, Verifier, VerifyError};
use crate::clock::now_secs;
use crate::config::{Config, ProcessEnv};
use actbridge_sts::{Realm, TokenService};

const AGENT: &str = "spiffe://demo.example.com/agent/summarizer-tech";
const KEY_PEM: &str = include_str!("../../../fuzz/issuer-key.pem");

/// The issuer: its token service (serving the JWKS), its key and `kid`.
struct Issuer {
    sts: Arc<TokenService>,
    key: EncodingKey,
    kid: String,
    stop: CancellationToken,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn issuer() -> Issuer {
    let realm = Realm::from_yaml_str(include_str!("../../../demo/realm.yaml")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let sts = TokenService::new(realm, &url, Some(KEY_PEM.as_bytes())).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(Arc::clone(&sts).serve(listener, stop.clone()));
    let sample = sts.sign_claims(&json!({}));
    let header = URL_SAFE_NO_PAD
        .decode(sample.split('.').next().unwrap())
        .unwrap();
    let kid = serde_json::from_slice::<Value>(&header).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    Issuer {
        sts,
        key: EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap(),
        kid,
        stop,
    }
}

/// A verifier trusting `iss` (inbound audience: the agent), with `extra` YAML lines in
/// the issuer's entry, its keys loaded.
async fn verifier(iss: &Issuer, extra: &str) -> Verifier {
    let yaml = format!(
        "listen: {{ext_proc: \"tcp://127.0.0.1:9001\"}}\nissuers:\n  - issuer: {}\n    \
         jwks_uri: {}\n    audiences: [\"{AGENT}\"]\n{extra}",
        iss.sts.issuer(),
        iss.sts.jwks_uri(),
    );
    let v = Verifier::new(&Config::from_yaml(&yaml, &ProcessEnv).unwrap());
    for store in v.jwks_stores() {
        store.refresh().await.unwrap();
    }
    v
}

/// A compact JWS over exactly these header and payload texts, signed by `key`.
fn jws(header: &str, payload: &str, key: &EncodingKey) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), key, Algorithm::RS256).unwrap();
    format!("{input}.{sig}")
}

impl Issuer {
    /// alice's access token claims with `patch` applied (a `null` member removes it).
    fn claims(&self, patch: Value) -> Value {
        let mut c = json!({
            "iss": self.sts.issuer(), "sub": "alice-id", "aud": AGENT,
            "exp": now_secs() + 300, "iat": now_secs(),
        });
        for (k, v) in patch.as_object().unwrap() {
            match v {
                Value::Null => c.as_object_mut().unwrap().remove(k),
                v => c.as_object_mut().unwrap().insert(k.clone(), v.clone()),
            };
        }
        c
    }

    /// The header with `typ` as given (`None`: no `typ` member).
    fn header(&self, typ: Option<&str>) -> String {
        match typ {
            None => json!({"alg": "RS256", "kid": self.kid}),
            Some(t) => json!({"alg": "RS256", "kid": self.kid, "typ": t}),
        }
        .to_string()
    }

    /// alice's token under header `typ`, with claims `patch`, issuer-signed.
    fn token(&self, typ: Option<&str>, patch: Value) -> String {
        jws(
            &self.header(typ),
            &self.claims(patch).to_string(),
            &self.key,
        )
    }
}

/// A token with this header and these claims whose signature is the issuer's, over other
/// bytes: what a forger without the key can make.
fn forge(header: &str, claims: &Value) -> String {
    let other = jws(
        header,
        "{}",
        &EncodingKey::from_rsa_pem(KEY_PEM.as_bytes()).unwrap(),
    );
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        other.rsplit('.').next().unwrap()
    )
}

/// Ok, or the reason the verifier gave.
async fn outcome(v: &Verifier, token: &str) -> Result<(), &'static str> {
    v.verify(token, AudienceProfile::Inbound)
        .await
        .map(|_| ())
        .map_err(|e| e.reason())
}

/// Runs `(row name, token, expected)` rows and reports every mismatch at once.
async fn run(v: &Verifier, rows: Vec<(String, String, Result<(), &'static str>)>) {
    let mut failures = Vec::new();
    for (name, token, expected) in rows {
        let got = outcome(v, &token).await;
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const TYPE: Result<(), &str> = Err("token_type_not_accepted");
const CLASS: Result<(), &str> = Err("token_class_not_accepted");
const MALFORMED: Result<(), &str> = Err("token_malformed");
const RANGE: Result<(), &str> = Err("token_time_out_of_range");
const INVALID: Result<(), &str> = Err("token_invalid_claim");

#[tokio::test]
async fn by_default_only_access_tokens_pass_whatever_the_issuer_signed() {
    let iss = issuer().await;
    let v = verifier(&iss, "").await;
    let mut rows = Vec::new();
    // The JOSE header `typ`: media types, case-insensitive, `application/` implied.
    for (typ, expected) in [
        (None, Ok(())),
        (Some("JWT"), Ok(())),
        (Some("jwt"), Ok(())),
        (Some("at+jwt"), Ok(())),
        (Some("AT+JWT"), Ok(())),
        (Some("application/at+jwt"), Ok(())),
        (Some("Application/At+Jwt"), Ok(())),
        (Some("application/jwt"), Ok(())),
        (Some("JOSE"), TYPE),
        (Some("JOSE+JSON"), TYPE),
        (Some("dpop+jwt"), TYPE),
        (Some("logout+jwt"), TYPE),
        (Some("secevent+jwt"), TYPE),
        (Some("token-introspection+jwt"), TYPE),
        (Some("text/jwt"), TYPE),
        (Some("application/"), TYPE),
        (Some(""), TYPE),
    ] {
        rows.push((
            format!("header typ {typ:?}"),
            iss.token(typ, json!({})),
            expected,
        ));
    }
    for raw in ["null", "1", r#"["JWT"]"#] {
        let header = format!(r#"{{"alg":"RS256","kid":"{}","typ":{raw}}}"#, iss.kid);
        let token = jws(&header, &iss.claims(json!({})).to_string(), &iss.key);
        rows.push((format!("header typ {raw}"), token, MALFORMED));
    }
    // Keycloak's payload `typ`: compared ignoring ASCII case, as Keycloak does.
    for (typ, expected) in [
        (Value::Null, Ok(())),
        (json!("Bearer"), Ok(())),
        (json!("bearer"), Ok(())),
        (json!("BEARER"), Ok(())),
        (json!("ID"), CLASS),
        (json!("Refresh"), CLASS),
        (json!("Logout"), CLASS),
        (json!("Offline"), CLASS),
        (json!("DPoP"), CLASS),
        (json!("Serialized-ID"), CLASS),
        (json!("Bearer "), CLASS),
        (json!(""), CLASS),
        (json!(1), INVALID),
        (json!(["Bearer"]), INVALID),
    ] {
        let token = iss.token(Some("JWT"), json!({ "typ": typ }));
        rows.push((format!("claim typ {typ}"), token, expected));
    }
    // Both a good header and a bad class, or the reverse: still refused.
    rows.push((
        "at+jwt header, ID class".into(),
        iss.token(Some("at+jwt"), json!({"typ": "ID"})),
        CLASS,
    ));
    rows.push((
        "logout+jwt header, Bearer class".into(),
        iss.token(Some("logout+jwt"), json!({"typ": "Bearer"})),
        TYPE,
    ));
    run(&v, rows).await;
}

#[tokio::test]
async fn the_header_typ_is_refused_before_the_signature_and_the_claim_only_after_it() {
    let iss = issuer().await;
    let v = verifier(&iss, "").await;
    let forged = forge(&iss.header(Some("logout+jwt")), &iss.claims(json!({})));
    assert_eq!(
        v.verify(&forged, AudienceProfile::Inbound)
            .await
            .unwrap_err(),
        VerifyError::TypeNotAccepted("logout+jwt".into())
    );
    // An unsigned claim is not believed, not even to refuse: the signature fails first.
    let forged = forge(&iss.header(Some("JWT")), &iss.claims(json!({"typ": "ID"})));
    assert_eq!(
        v.verify(&forged, AudienceProfile::Inbound)
            .await
            .unwrap_err(),
        VerifyError::BadSignature
    );
    let signed = iss.token(Some("JWT"), json!({"typ": "ID"}));
    assert_eq!(
        v.verify(&signed, AudienceProfile::Inbound)
            .await
            .unwrap_err(),
        VerifyError::ClassNotAccepted("ID".into())
    );
}
#[tokio::test]
async fn token_types_configured_per_issuer_replace_the_defaults() {
    let iss = issuer().await;
    let strict = verifier(&iss, "    token_types:\n      header: [at+jwt]\n").await;
    run(
        &strict,
        vec![
            ("absent".into(), iss.token(None, json!({})), Ok(())),
            (
                "at+jwt".into(),
                iss.token(Some("at+jwt"), json!({})),
                Ok(()),
            ),
            (
                "application/at+jwt".into(),
                iss.token(Some("application/at+jwt"), json!({})),
                Ok(()),
            ),
            ("JWT".into(), iss.token(Some("JWT"), json!({})), TYPE),
            (
                "claim default kept".into(),
                iss.token(Some("at+jwt"), json!({"typ": "ID"})),
                CLASS,
            ),
        ],
    )
    .await;
    let wide = verifier(&iss, "    token_types:\n      claim: [Bearer, ID]\n").await;
    run(
        &wide,
        vec![
            (
                "ID, listed".into(),
                iss.token(Some("JWT"), json!({"typ": "ID"})),
                Ok(()),
            ),
            (
                "id, listed ignoring case".into(),
                iss.token(Some("JWT"), json!({"typ": "id"})),
                Ok(()),
            ),
            (
                "Refresh, not listed".into(),
                iss.token(Some("JWT"), json!({"typ": "Refresh"})),
                CLASS,
            ),
            (
                "header default kept".into(),
                iss.token(Some("dpop+jwt"), json!({})),
                TYPE,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_member_name_twice_in_the_header_or_the_payload_is_refused_at_any_depth() {
    let iss = issuer().await;
    let v = verifier(&iss, "").await;
    let (kid, issuer_url, exp) = (&iss.kid, iss.sts.issuer(), now_secs() + 300);
    let head = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
    let body = format!(r#""iss":"{issuer_url}","aud":"{AGENT}","exp":{exp}"#);
    let mut rows = vec![(
        "no name twice".to_string(),
        jws(&head, &format!(r#"{{{body},"sub":"alice"}}"#), &iss.key),
        Ok(()),
    )];
    for (name, header) in [
        (
            "kid twice",
            format!(r#"{{"alg":"RS256","kid":"{kid}","kid":"{kid}"}}"#),
        ),
        (
            "alg twice",
            format!(r#"{{"alg":"none","alg":"RS256","kid":"{kid}"}}"#),
        ),
        (
            "typ twice",
            format!(r#"{{"alg":"RS256","kid":"{kid}","typ":"logout+jwt","typ":"JWT"}}"#),
        ),
        (
            "escaped kid twice",
            format!(r#"{{"alg":"RS256","kid":"{kid}","k\u0069d":"{kid}"}}"#),
        ),
    ] {
        let payload = format!(r#"{{{body},"sub":"alice"}}"#);
        rows.push((
            format!("header: {name}"),
            jws(&header, &payload, &iss.key),
            MALFORMED,
        ));
    }
    for (name, claims) in [
        ("sub twice", r#""sub":"alice","sub":"admin""#.to_string()),
        ("typ twice", r#""typ":"ID","typ":"Bearer""#.to_string()),
        ("aud twice", format!(r#""aud":"{AGENT}""#)),
        ("exp twice", format!(r#""exp":{}"#, now_secs() + 1_000_000)),
        (
            "client_id twice inside act",
            r#""act":{"client_id":"spiffe://d/agent/a","client_id":"spiffe://d/agent/b"}"#
                .to_string(),
        ),
        (
            "sub twice two levels down act",
            r#""act":{"sub":"a","act":{"sub":"b","sub":"c"}}"#.to_string(),
        ),
        (
            "a key twice in an object inside an array",
            r#""groups":["g"],"extra":[{"x":1,"x":2}]"#.to_string(),
        ),
    ] {
        let payload = format!("{{{body},{claims}}}");
        rows.push((
            format!("payload: {name}"),
            jws(&head, &payload, &iss.key),
            MALFORMED,
        ));
    }
    run(&v, rows).await;
    let payload = format!(r#"{{{body},"sub":"alice","sub":"admin"}}"#);
    assert_eq!(
        v.verify(&jws(&head, &payload, &iss.key), AudienceProfile::Inbound)
            .await
            .unwrap_err(),
        VerifyError::Malformed("payload names a claim twice")
    );
}

#[tokio::test]
async fn exp_iat_and_nbf_are_bounded_and_far_future_values_refused_without_overflow() {
    let iss = issuer().await;
    let v = verifier(&iss, "").await;
    let now = now_secs();
    let mut rows = Vec::new();
    for (name, patch, expected) in [
        (
            "exp at the last second of 9999",
            json!({"exp": MAX_NUMERIC_DATE}),
            Ok(()),
        ),
        (
            "exp one second later",
            json!({"exp": MAX_NUMERIC_DATE + 1}),
            RANGE,
        ),
        ("exp u64::MAX", json!({"exp": u64::MAX}), RANGE),
        ("exp i64::MAX", json!({"exp": i64::MAX}), RANGE),
        ("exp negative", json!({"exp": -1}), INVALID),
        (
            "exp a fraction",
            json!({"exp": now as f64 + 300.5}),
            INVALID,
        ),
        ("exp 1e300", json!({"exp": 1e300}), INVALID),
        ("iat absent", json!({"iat": null}), Ok(())),
        ("iat 0", json!({"iat": 0}), Ok(())),
        ("iat within the leeway", json!({"iat": now + 20}), Ok(())),
        (
            "iat past the leeway",
            json!({"iat": now + 120}),
            Err("token_not_yet_valid"),
        ),
        (
            "iat at the last second of 9999",
            json!({"iat": MAX_NUMERIC_DATE}),
            Err("token_not_yet_valid"),
        ),
        (
            "iat one second later",
            json!({"iat": MAX_NUMERIC_DATE + 1}),
            RANGE,
        ),
        ("iat u64::MAX", json!({"iat": u64::MAX}), RANGE),
        ("iat negative", json!({"iat": -1}), INVALID),
        ("iat a fraction", json!({"iat": now as f64}), INVALID),
        ("iat a string", json!({"iat": now.to_string()}), INVALID),
        ("nbf in the past", json!({"nbf": now - 60}), Ok(())),
        ("nbf 0", json!({"nbf": 0}), Ok(())),
        (
            "nbf u64::MAX",
            json!({"nbf": u64::MAX}),
            Err("token_not_yet_valid"),
        ),
        ("nbf negative", json!({"nbf": -1}), INVALID),
        ("nbf i64::MIN", json!({"nbf": i64::MIN}), INVALID),
    ] {
        rows.push((name.to_string(), iss.token(Some("JWT"), patch), expected));
    }
    run(&v, rows).await;
    // A token that passed once passes again from the cache, which keeps it until its
    // `exp` (here, the end of 9999) without overflowing.
    let forever = iss.token(Some("JWT"), json!({"exp": MAX_NUMERIC_DATE}));
    assert_eq!(outcome(&v, &forever).await, Ok(()));
    assert_eq!(outcome(&v, &forever).await, Ok(()));
}
