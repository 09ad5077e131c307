//! Hostile input through the real Envoy, table-driven: every request is written as raw
//! bytes to the inbound or outbound listener (so CR, LF, NUL and non-UTF-8 reach Envoy as
//! an attacker would send them), each row with the status it must get. The refusals come
//! from Envoy's own codec (malformed HTTP, oversized or too many headers) or from
//! actbridge (401/403/400 with its JSON body); either way the upstream must not see the
//! request. After the table actbridge still answers its health and readiness probes and
//! a good request still passes both ways.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::support::echo::Echo;
use crate::support::net::raw_http;
use crate::support::world::{AGENT, Sts, World, claims_of, sidecar_config};

/// An RSA-2048 private key as PKCS#8 PEM, and the same as a signing key, and its public
/// key as SPKI PEM (the text an attacker would find published).
struct RsaKey {
    pem: String,
    key: EncodingKey,
    public_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn rsa_key() -> RsaKey {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair as _;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = AsDer::<Pkcs8V1Der>::as_der(&kp).unwrap();
    let spki = AsDer::<PublicKeyX509Der>::as_der(kp.public_key()).unwrap();
    let pem_text = pem("PRIVATE KEY", der.as_ref());
    RsaKey {
        key: EncodingKey::from_rsa_pem(pem_text.as_bytes()).unwrap(),
        pem: pem_text,
        public_pem: pem("PUBLIC KEY", spki.as_ref()),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over exactly these header and payload bytes.
fn jws_raw(header: &[u8], payload: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, alg).unwrap();
    format!("{signing_input}.{sig}")
}

/// A compact JWS with this header (its `alg` must match `alg`) and these claims.
fn jws(header: Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    jws_raw(
        &serde_json::to_vec(&header).unwrap(),
        &serde_json::to_vec(claims).unwrap(),
        key,
        alg,
    )
}

fn now() -> u64 {
    actbridge::clock::now_secs()
}

/// Where a row is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum To {
    /// The inbound listener, path `/data` unless the row sets one.
    In,
    /// The outbound listener with `host: document-service` (an `exchange` route).
    Out,
}

/// What a row must get.
#[derive(Debug)]
enum Expect {
    /// Refused with this status; the upstream sees nothing. For actbridge's own refusals
    /// the body's `error_description` must contain the text (`None`: Envoy's refusal).
    Refused(u16, Option<&'static str>),
    /// Passes (200) to the upstream, which must not see any of these strings in any
    /// header value (forged identity headers stripped, the user's token exchanged).
    PassesWithout(Vec<String>),
}

struct Row {
    name: &'static str,
    to: To,
    /// Raw bytes of the request head: request line and headers, without the final
    /// `connection: close` and empty line (added when sent).
    head: Vec<u8>,
    expect: Expect,
}

/// A request head: `GET path`, `host`, then each header line as given (raw bytes).
fn head(to: To, path: &str, headers: &[&[u8]]) -> Vec<u8> {
    let host = match to {
        To::In => "app.pod.local",
        To::Out => "document-service",
    };
    let mut h = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\n").into_bytes();
    for line in headers {
        h.extend_from_slice(line);
        h.extend_from_slice(b"\r\n");
    }
    h
}

fn auth_line(value: &str) -> Vec<u8> {
    format!("authorization: {value}").into_bytes()
}

fn row(name: &'static str, to: To, auth: &[&str], expect: Expect) -> Row {
    let lines: Vec<Vec<u8>> = auth.iter().map(|a| auth_line(a)).collect();
    let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let path = if to == To::In { "/data" } else { "/documents" };
    Row {
        name,
        to,
        head: head(to, path, &refs),
        expect,
    }
}

fn raw_row(name: &'static str, to: To, head: Vec<u8>, expect: Expect) -> Row {
    Row {
        name,
        to,
        head,
        expect,
    }
}

fn refused(status: u16, description: &'static str) -> Expect {
    Expect::Refused(status, Some(description))
}

fn envoy_refuses(status: u16) -> Expect {
    Expect::Refused(status, None)
}

/// The world for the table: the demo token service signing with a key the test holds,
/// summarizer-tech's default sidecar in front of it.
async fn world() -> (World, RsaKey) {
    let issuer_key = rsa_key();
    let sts = Sts::start_with_key(issuer_key.pem.as_bytes()).await;
    let config = sidecar_config(&sts);
    (World::start_with(sts, &config).await, issuer_key)
}

#[tokio::test]
async fn hostile_requests_are_refused_with_their_status_and_never_reach_the_upstream() {
    let (world, issuer) = world().await;
    let attacker = rsa_key();
    // The attacker's key server: any request to it would mean actbridge followed a
    // URL from a token header.
    let key_server = Echo::start().await;
    let key_url = format!("http://127.0.0.1:{}/jwks.json", key_server.port);

    let issuer_url = world.sts.service.issuer();
    let kid = {
        let jwks: Value = reqwest::get(world.sts.service.jwks_uri())
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        jwks["keys"][0]["kid"].as_str().unwrap().to_string()
    };
    let jwks_bytes = reqwest::get(world.sts.service.jwks_uri())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let claims = |patch: Value| {
        let mut c = json!({
            "iss": issuer_url, "sub": "7f3e2a1c-0000-4000-8000-000000000001",
            "preferred_username": "alice", "aud": AGENT,
            "exp": now() + 300, "iat": now(),
        });
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    // A delegated token (as the outbound route needs): alice → summarizer-tech.
    let delegated_claims = |patch: Value| {
        let mut c = claims(json!({"act": {"sub": "sa", "client_id": AGENT}}));
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let rs = |header: Value, c: &Value| jws(header, c, &issuer.key, Algorithm::RS256);
    let signed = |c: &Value| rs(json!({"alg": "RS256", "kid": kid}), c);
    let good = signed(&claims(json!({})));
    let good_out = world.sts.alice_delegated().await;
    let bearer = |t: &str| format!("Bearer {t}");

    let none_header = b64(format!(r#"{{"alg":"none","kid":"{kid}"}}"#).as_bytes());
    let none_upper = b64(format!(r#"{{"alg":"NONE","kid":"{kid}"}}"#).as_bytes());
    let payload = b64(&serde_json::to_vec(&claims(json!({}))).unwrap());
    let out_payload = b64(&serde_json::to_vec(&delegated_claims(json!({}))).unwrap());
    let hs = |secret: &[u8], c: &Value| {
        jws(
            json!({"alg": "HS256", "kid": kid}),
            c,
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
    };
    // `act` nested `depth` deep, each level `level` followed by the next.
    let act_bomb = |depth: usize, level: &str| {
        let mut p = serde_json::to_string(&claims(json!({}))).unwrap();
        p.pop(); // the closing brace
        p.push_str(r#","act":"#);
        p.push_str(&level.repeat(depth));
        p.push_str("{}");
        p.push_str(&"}".repeat(depth + 1));
        let t = jws_raw(
            format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#).as_bytes(),
            p.as_bytes(),
            &issuer.key,
            Algorithm::RS256,
        );
        assert!(t.len() < 8192, "the bomb must get past the size limit");
        t
    };
    let forever = signed(&claims(json!({"exp": u64::MAX})));
    let padded = signed(&claims(json!({"padding": "x".repeat(9000)})));
    let attacker_jwk = {
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&attacker.key, Algorithm::RS256).unwrap();
        serde_json::to_value(jwk).unwrap()
    };
    let with_attacker = |extra: Value| {
        let mut h = json!({"alg": "RS256", "kid": "attacker-1"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        jws(h, &claims(json!({})), &attacker.key, Algorithm::RS256)
    };
    let many_headers: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("x-filler-{i}: {i}").into_bytes())
        .collect();
    let ninety_auth: Vec<Vec<u8>> = (0..90).map(|_| auth_line("Bearer a")).collect();

    const MALFORMED: &str = "the token is malformed";
    const ALG: &str = "the token's algorithm is not accepted";
    const UNKNOWN_KID: &str = "the token's signing key is not recognised";
    const CLAIMS: &str = "the token's claims are invalid";
    let rows: Vec<Row> = vec![
        // --- the authorization header itself
        row("no authorization", To::In, &[], refused(401, "")),
        row("empty bearer", To::In, &["Bearer "], refused(401, "")),
        row("scheme only", To::In, &["Bearer"], refused(401, "")),
        row(
            "basic scheme",
            To::In,
            &["Basic YWxpY2U6YWxpY2UxMjM="],
            refused(401, ""),
        ),
        row(
            "two authorization headers, both good",
            To::In,
            &[&bearer(&good), &bearer(&good)],
            refused(401, ""),
        ),
        row(
            "a good bearer and a basic",
            To::In,
            &[&bearer(&good), "Basic YWxpY2U6YWxpY2UxMjM="],
            refused(401, ""),
        ),
        row(
            "two bearers joined by a comma",
            To::In,
            &[&format!("Bearer {good}, Bearer {good}")],
            refused(401, ""),
        ),
        raw_row(
            "ninety authorization headers",
            To::In,
            head(
                To::In,
                "/data",
                &ninety_auth.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            ),
            refused(401, ""),
        ),
        // --- malformed and oversized tokens
        row(
            "two segments",
            To::In,
            &["Bearer aaaa.bbbb"],
            refused(401, MALFORMED),
        ),
        row(
            "four segments",
            To::In,
            &[&bearer(&format!("{good}.x"))],
            refused(401, MALFORMED),
        ),
        row(
            "empty JSON header and payload",
            To::In,
            &["Bearer e30.e30.e30"],
            refused(401, MALFORMED),
        ),
        row(
            "header segment not JSON",
            To::In,
            &[&bearer(&format!("{}.{payload}.c2ln", b64(b"not json")))],
            refused(401, MALFORMED),
        ),
        row(
            "token over tokens.max_bytes",
            To::In,
            &[&bearer(&padded)],
            refused(401, "the token is too large"),
        ),
        raw_row(
            "a 100 KiB header (over Envoy's limit)",
            To::In,
            head(
                To::In,
                "/data",
                &[auth_line(&bearer(&"A".repeat(100 * 1024))).as_slice()],
            ),
            envoy_refuses(431),
        ),
        // --- alg tricks
        row(
            "alg none, empty signature",
            To::In,
            &[&bearer(&format!("{none_header}.{payload}."))],
            refused(401, ALG),
        ),
        row(
            "alg NONE, the issuer's signature",
            To::In,
            &[&bearer(&format!(
                "{none_upper}.{payload}.{}",
                good.rsplit('.').next().unwrap()
            ))],
            refused(401, ALG),
        ),
        row(
            "HS256 keyed with the issuer's JWKS document",
            To::In,
            &[&bearer(&hs(&jwks_bytes, &claims(json!({}))))],
            refused(401, ALG),
        ),
        row(
            "HS256 keyed with the issuer's public key PEM",
            To::In,
            &[&bearer(&hs(
                issuer.public_pem.as_bytes(),
                &claims(json!({})),
            ))],
            refused(401, ALG),
        ),
        row(
            "ES256 header over the RSA key's kid",
            To::In,
            &[&bearer(&format!(
                "{}.{payload}.{}",
                b64(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#).as_bytes()),
                b64(&[7u8; 64])
            ))],
            refused(401, ""),
        ),
        // --- kid tricks (signed with the issuer's real key: only the kid is wrong)
        row(
            "kid with path traversal",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": "../../../../../../etc/passwd"}),
                &claims(json!({})),
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "kid with SQL",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": "x' UNION SELECT key FROM keys WHERE '1'='1"}),
                &claims(json!({})),
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "kid of 3000 characters with control characters",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": format!("\u{0}\r\n{}", "k".repeat(3000))}),
                &claims(json!({})),
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "kid not a string",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": 1}),
                &claims(json!({})),
            ))],
            refused(401, MALFORMED),
        ),
        row(
            "no kid",
            To::In,
            &[&bearer(&rs(json!({"alg": "RS256"}), &claims(json!({}))))],
            refused(401, ""),
        ),
        // --- headers that point at keys: never followed
        row(
            "jku to the attacker's key server",
            To::In,
            &[&bearer(&with_attacker(json!({"jku": key_url})))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "x5u to the attacker's key server",
            To::In,
            &[&bearer(&with_attacker(json!({"x5u": key_url})))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "the attacker's key embedded as jwk",
            To::In,
            &[&bearer(&with_attacker(json!({"jwk": attacker_jwk})))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "the attacker's key under the issuer's kid, with jku",
            To::In,
            &[&bearer(&with_attacker(json!({"kid": kid, "jku": key_url})))],
            refused(401, "the token's signature is invalid"),
        ),
        // --- crit (RFC 7515 §4.1.11): an extension the recipient does not understand
        // makes the token invalid, even with the issuer's own signature.
        row(
            "crit naming an unknown extension, issuer-signed",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": kid, "crit": ["urn:example:unknown"], "urn:example:unknown": true}),
                &claims(json!({})),
            ))],
            refused(401, MALFORMED),
        ),
        row(
            "crit b64:false (unencoded payload), issuer-signed",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": kid, "b64": false, "crit": ["b64"]}),
                &claims(json!({})),
            ))],
            refused(401, MALFORMED),
        ),
        row(
            "crit empty, issuer-signed",
            To::In,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": kid, "crit": []}),
                &claims(json!({})),
            ))],
            refused(401, MALFORMED),
        ),
        // --- bytes an HTTP client would refuse to send
        raw_row(
            "NUL in the authorization value",
            To::In,
            head(
                To::In,
                "/data",
                &[format!("authorization: Bearer {good}\0").as_bytes()],
            ),
            envoy_refuses(400),
        ),
        raw_row(
            "bare CR in the authorization value",
            To::In,
            head(
                To::In,
                "/data",
                &[format!("authorization: Bearer {good}\rx-actbridge-subject: root").as_bytes()],
            ),
            // Envoy passes the bare CR on inside the value; actbridge refuses it.
            refused(401, "the authorization header is malformed"),
        ),
        raw_row(
            "bare LF splitting a forged header off an invalid token",
            To::In,
            head(
                To::In,
                "/data",
                &[b"authorization: Bearer forged\nx-actbridge-subject: root".as_slice()],
            ),
            // Envoy ends the line at the bare LF: two headers, the token refused.
            refused(401, MALFORMED),
        ),
        raw_row(
            // Envoy unfolds (RFC 9112 §5.2 allows it); the folded forged header is still
            // the client's own and is stripped.
            "obs-fold continuing a forged identity header",
            To::In,
            head(
                To::In,
                "/data",
                &[
                    auth_line(&bearer(&good)).as_slice(),
                    b"x-actbridge-subject: a",
                    b"  forged-fold",
                ],
            ),
            Expect::PassesWithout(vec!["forged-fold".into()]),
        ),
        raw_row(
            "non-UTF-8 bytes in the authorization value",
            To::In,
            head(
                To::In,
                "/data",
                &[b"authorization: Bearer \xff\xfe\xfd".as_slice()],
            ),
            refused(401, ""),
        ),
        raw_row(
            "a Latin-1 byte inside an otherwise good token",
            To::In,
            head(
                To::In,
                "/data",
                &[[
                    b"authorization: Bearer ".as_slice(),
                    &good.as_bytes()[..20],
                    b"\xe9",
                    &good.as_bytes()[20..],
                ]
                .concat()
                .as_slice()],
            ),
            refused(401, ""),
        ),
        raw_row(
            "200 headers (over Envoy's count limit)",
            To::In,
            head(
                To::In,
                "/data",
                &many_headers.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            ),
            envoy_refuses(431),
        ),
        raw_row(
            "content-length and transfer-encoding together",
            To::In,
            [
                head(
                    To::In,
                    "/data",
                    &[
                        b"content-length: 4".as_slice(),
                        b"transfer-encoding: chunked",
                    ],
                ),
                b"connection: close\r\n\r\n0\r\n\r\n".to_vec(),
            ]
            .concat(),
            envoy_refuses(400),
        ),
        // --- nested act bombs and act of the wrong shape
        row(
            "act nested 600 deep",
            To::In,
            &[&bearer(&act_bomb(600, r#"{"act":"#))],
            refused(401, MALFORMED),
        ),
        row(
            "act nested 60 deep",
            To::In,
            &[&bearer(&act_bomb(60, r#"{"client_id":"x","act":"#))],
            refused(401, "the token's delegation chain is too deep"),
        ),
        row(
            "act a string",
            To::In,
            &[&bearer(&signed(&claims(json!({"act": AGENT}))))],
            refused(401, CLAIMS),
        ),
        row(
            "act an array of 1000 actors",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"act": vec![json!({}); 1000]}),
            )))],
            refused(401, CLAIMS),
        ),
        // --- claims
        row(
            "expired",
            To::In,
            &[&bearer(&signed(&claims(json!({"exp": now() - 3600}))))],
            refused(401, "the token has expired"),
        ),
        row(
            "wrong audience",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"aud": "spiffe://demo.example.com/agent/reviewer-ops"}),
            )))],
            refused(401, "the token is not meant for this service"),
        ),
        row(
            "audience a list of objects",
            To::In,
            &[&bearer(&signed(&claims(json!({"aud": [{"a": AGENT}]}))))],
            refused(401, ""),
        ),
        row(
            "untrusted issuer, issuer-signed",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"iss": "https://evil.example.com/realms/demo"}),
            )))],
            refused(401, "the token's issuer is not trusted"),
        ),
        row(
            "issuer an array",
            To::In,
            &[&bearer(&signed(&claims(json!({"iss": [issuer_url]}))))],
            refused(401, "the token's issuer is not trusted"),
        ),
        row(
            "exp a string",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"exp": (now() + 300).to_string()}),
            )))],
            refused(401, ""),
        ),
        row(
            "exp 1e300",
            To::In,
            &[&bearer(&signed(&claims(json!({"exp": 1e300}))))],
            refused(401, ""),
        ),
        // Far-future expiry: valid (the issuer signed it), and the verified-token cache,
        // which keeps an entry until exp, must cope with the largest exp there is.
        row(
            "exp at u64::MAX, issuer-signed",
            To::In,
            &[&bearer(&forever)],
            Expect::PassesWithout(vec![]),
        ),
        row(
            "exp at u64::MAX again (from the verified-token cache)",
            To::In,
            &[&bearer(&forever)],
            Expect::PassesWithout(vec![]),
        ),
        row(
            "sub an object (an injection operator)",
            To::In,
            &[&bearer(&signed(&claims(json!({"sub": {"$ne": null}}))))],
            refused(401, ""),
        ),
        row(
            "username with CR LF (a header injection through a claim)",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"preferred_username": "alice\r\nx-actbridge-subject: root"}),
            )))],
            refused(401, ""),
        ),
        row(
            "username with NUL",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"preferred_username": "alice\u{0}root"}),
            )))],
            refused(401, ""),
        ),
        row(
            "a token for another audience (the document service)",
            To::In,
            &[&bearer(&signed(&claims(
                json!({"aud": "spiffe://demo.example.com/service/document-service"}),
            )))],
            refused(401, "the token is not meant for this service"),
        ),
        // --- forged identity and direction headers
        raw_row(
            "forged identity headers beside a good token",
            To::In,
            head(
                To::In,
                "/data",
                &[
                    auth_line(&bearer(&good)).as_slice(),
                    b"x-actbridge-subject: forged-admin",
                    b"X-Actbridge-Username: forged-root",
                    b"x-actbridge-actors: [{\"client_id\":\"forged-agent\"}]",
                    b"x-actbridge-grant: forged-grant",
                ],
            ),
            Expect::PassesWithout(vec![
                "forged-admin".into(),
                "forged-root".into(),
                "forged-agent".into(),
                "forged-grant".into(),
            ]),
        ),
        raw_row(
            "a client's x-actbridge-direction: outbound on the inbound listener",
            To::In,
            head(
                To::In,
                "/data",
                &[b"x-actbridge-direction: outbound".as_slice()],
            ),
            refused(401, ""),
        ),
        // --- the outbound listener
        row("outbound, no token", To::Out, &[], refused(401, "")),
        row(
            "outbound, alg none",
            To::Out,
            &[&bearer(&format!("{none_header}.{out_payload}."))],
            refused(401, ALG),
        ),
        row(
            "outbound, token over tokens.max_bytes",
            To::Out,
            &[&bearer(&signed(&delegated_claims(
                json!({"padding": "x".repeat(9000)}),
            )))],
            refused(401, "the token is too large"),
        ),
        row(
            "outbound, crit naming an unknown extension, issuer-signed",
            To::Out,
            &[&bearer(&rs(
                json!({"alg": "RS256", "kid": kid, "crit": ["urn:example:unknown"], "urn:example:unknown": 1}),
                &delegated_claims(json!({})),
            ))],
            refused(401, MALFORMED),
        ),
        row(
            "outbound, the attacker's key with jku",
            To::Out,
            &[&bearer(&jws(
                json!({"alg": "RS256", "kid": "attacker-1", "jku": key_url}),
                &delegated_claims(json!({})),
                &attacker.key,
                Algorithm::RS256,
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "outbound, two authorization headers",
            To::Out,
            &[&bearer(&good_out), &bearer(&good_out)],
            refused(401, ""),
        ),
        row(
            "outbound, expired delegation",
            To::Out,
            &[&bearer(&signed(&delegated_claims(
                json!({"exp": now() - 3600}),
            )))],
            refused(401, "the token has expired"),
        ),
        raw_row(
            "outbound, NUL in the host",
            To::Out,
            b"GET /documents HTTP/1.1\r\nhost: document-service\0.evil\r\n".to_vec(),
            envoy_refuses(400),
        ),
        raw_row(
            "outbound, a client's x-actbridge-direction: inbound",
            To::Out,
            head(
                To::Out,
                "/documents",
                &[
                    auth_line(&bearer(&good_out)).as_slice(),
                    b"x-actbridge-direction: inbound",
                ],
            ),
            Expect::PassesWithout(vec![good_out.clone()]),
        ),
    ];
    assert!(rows.len() >= 30);

    let mut failures = Vec::new();
    for r in &rows {
        let (port, upstream) = match r.to {
            To::In => (world.envoy.inbound_port, &world.app),
            To::Out => (world.envoy.outbound_port, &world.docs),
        };
        let before = upstream.count();
        let mut request = r.head.clone();
        if !request.ends_with(b"\r\n\r\n0\r\n\r\n") {
            request.extend_from_slice(b"connection: close\r\n\r\n");
        }
        let answer = raw_http(port, &request).await;
        let after = upstream.count();
        let got = answer.as_ref().map(|(s, _)| *s);
        match &r.expect {
            Expect::Refused(status, description) => {
                if got != Some(*status) {
                    failures.push(format!("{}: expected {status}, got {answer:?}", r.name));
                }
                if let (Some(d), Some((_, body))) = (description, &answer) {
                    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                    let text = v["error_description"].as_str().unwrap_or("");
                    if v.is_null() || !text.contains(d) {
                        failures.push(format!(
                            "{}: expected actbridge's refusal \"{d}\", got {body}",
                            r.name
                        ));
                    }
                }
                if after != before {
                    failures.push(format!("{}: refused, but the upstream saw it", r.name));
                }
            }
            Expect::PassesWithout(forbidden) => {
                if got != Some(200) || after != before + 1 {
                    failures.push(format!("{}: expected to pass, got {answer:?}", r.name));
                    continue;
                }
                let seen = upstream.seen().pop().unwrap();
                for f in forbidden {
                    if seen.headers.iter().any(|(_, v)| v.contains(f.as_str())) {
                        failures.push(format!("{}: the upstream saw {f:?}", r.name));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}\n\nactbridge log (tail):\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n"),
        tail(&world.actbridge.log(), 40)
    );

    // The upstreams saw exactly the passing rows, and the identity the app got is the
    // verified one.
    let passing = |to: To| {
        rows.iter()
            .filter(|r| r.to == to && matches!(r.expect, Expect::PassesWithout(_)))
            .count()
    };
    assert_eq!(world.app.count(), passing(To::In));
    assert_eq!(world.docs.count(), passing(To::Out));
    let app_seen = world.app.seen();
    assert_eq!(
        app_seen[0].header_all("x-actbridge-username"),
        vec!["alice"]
    );
    let delegated = world.docs.seen()[0].bearer().to_string();
    assert_eq!(claims_of(&delegated)["act"]["client_id"], AGENT);
    assert_eq!(
        key_server.count(),
        0,
        "no key URL from a token was followed"
    );

    alive_and_serving(&world, &good, &good_out).await;
}

/// actbridge answers its probes and a good request passes both ways.
async fn alive_and_serving(world: &World, good_in: &str, good_out: &str) {
    for probe in ["healthz", "readyz"] {
        let r = reqwest::get(format!(
            "http://127.0.0.1:{}/{probe}",
            world.actbridge.admin_port
        ))
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "/{probe}");
    }
    let (apps, docs) = (world.app.count(), world.docs.count());
    let r = world
        .inbound("/data")
        .bearer_auth(good_in)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = world
        .agent_call("document-service", "/documents", good_out)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        (world.app.count(), world.docs.count()),
        (apps + 1, docs + 1)
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Many hostile requests at once (a mix of the expensive ones: signature checks of
/// forged tokens, oversized and bomb tokens) do not wedge actbridge: every one is
/// refused, and good requests pass right after.
#[tokio::test]
async fn a_burst_of_hostile_requests_leaves_actbridge_serving() {
    let (world, issuer) = world().await;
    let world = Arc::new(world);
    let attacker = rsa_key();
    let kid = claims_of_header(&world.sts.sign(json!({})))["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let base = json!({
        "iss": world.sts.service.issuer(), "sub": "u", "aud": AGENT,
        "exp": now() + 300, "iat": now(),
    });
    let mut tokens = Vec::new();
    for i in 0..200 {
        let mut c = base.clone();
        c["n"] = json!(i);
        tokens.push(match i % 4 {
            // A forged signature under the issuer's kid: a full RSA verification each.
            0 => jws(
                json!({"alg": "RS256", "kid": kid}),
                &c,
                &attacker.key,
                Algorithm::RS256,
            ),
            // Unknown kids: at most one JWKS re-fetch per interval, not one per request.
            1 => jws(
                json!({"alg": "RS256", "kid": format!("kid-{i}")}),
                &c,
                &attacker.key,
                Algorithm::RS256,
            ),
            2 => format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(&serde_json::to_vec(&c).unwrap())
            ),
            _ => "A".repeat(9000),
        });
    }
    let mut tasks = Vec::new();
    for t in tokens {
        let w = world.clone();
        tasks.push(tokio::spawn(async move {
            w.inbound("/data")
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    assert_eq!(world.app.count(), 0);
    let good = jws(
        json!({"alg": "RS256", "kid": kid}),
        &json!({"iss": world.sts.service.issuer(), "sub": "u", "aud": AGENT, "exp": now() + 300}),
        &issuer.key,
        Algorithm::RS256,
    );
    let good_out = world.sts.alice_delegated().await;
    alive_and_serving(&world, &good, &good_out).await;
}

fn claims_of_header(token: &str) -> Value {
    let h = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice(&h).unwrap()
}

/// With the policy on, a path the policy and the upstream could read differently (a dot
/// segment, an encoded slash or dot, a bad escape) is refused before the exchange, sent
/// raw so that no client normalises it first; a plain path still passes.
#[tokio::test]
async fn ambiguous_paths_are_refused_when_the_policy_judges_the_path() {
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "policy:\n  dir: \"{}\"\n",
            crate::support::world::policies_dir().display()
        );
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    let auth = auth_line(&format!("Bearer {token}"));
    let port = world.envoy.outbound_port;
    let send = |path: &str| {
        let mut req = head(To::Out, path, &[auth.as_slice()]);
        req.extend_from_slice(b"connection: close\r\n\r\n");
        async move { raw_http(port, &req).await }
    };
    let exchanges = world.sts.service.stats().token_exchange;
    for path in [
        "/documents/../DOC-003",
        "/documents/./DOC-003",
        "/documents/%2e%2e/DOC-003",
        "/documents%2FDOC-003",
        "/documents%5C..%5CDOC-003",
        "/documents/%ZZ",
        "/documents/%C0%AF",
    ] {
        let answer = send(path).await;
        assert_eq!(
            answer.as_ref().map(|(s, _)| *s),
            Some(400),
            "{path}: {answer:?}"
        );
    }
    assert_eq!(world.docs.count(), 0);
    assert_eq!(world.sts.service.stats().token_exchange, exchanges);
    let (status, body) = send("/documents/DOC-001").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.docs.seen()[0].path, "/documents/DOC-001");
}
