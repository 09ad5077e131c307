//! The hostile requests, by kind: each function returns its rows, forged from the
//! [`Kit`]; [`all`] is the whole table.

use jsonwebtoken::Algorithm;
use serde_json::json;

use super::forge::{Kit, b64, jws, now};
use super::table::{
    Expect, Row, To, auth_line, bearer, envoy_refuses, head, raw_row, refused, row,
};
use crate::support::world::AGENT;

const MALFORMED: &str = "the token is malformed";
const ALG: &str = "the token's algorithm is not accepted";
const UNKNOWN_KID: &str = "the token's signing key is not recognised";
const CLAIMS: &str = "the token's claims are invalid";

/// Every row, in the order they are sent.
pub fn all(k: &Kit) -> Vec<Row> {
    [
        authorization_header(k),
        malformed_tokens(k),
        alg_tricks(k),
        kid_tricks(k),
        key_pointers(k),
        crit(k),
        raw_bytes(k),
        act_shapes(k),
        claims(k),
        forged_headers(k),
        outbound(k),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The authorization header itself: missing, another scheme, more than one.
fn authorization_header(k: &Kit) -> Vec<Row> {
    let good = &k.good;
    let ninety_auth: Vec<Vec<u8>> = (0..90).map(|_| auth_line("Bearer a")).collect();
    vec![
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
            &[&bearer(good), &bearer(good)],
            refused(401, ""),
        ),
        row(
            "a good bearer and a basic",
            To::In,
            &[&bearer(good), "Basic YWxpY2U6YWxpY2UxMjM="],
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
    ]
}

/// Malformed and oversized tokens.
fn malformed_tokens(k: &Kit) -> Vec<Row> {
    let good = &k.good;
    let payload = k.payload_segment(&k.claims(json!({})));
    let padded = k.signed(&k.claims(json!({"padding": "x".repeat(9000)})));
    vec![
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
    ]
}

/// `alg` tricks: `none`, key confusion (HS256 keyed with the issuer's public key), an algorithm the key is not for.
fn alg_tricks(k: &Kit) -> Vec<Row> {
    let good = &k.good;
    let kid = &k.kid;
    let none_header = k.header_segment("none");
    let none_upper = k.header_segment("NONE");
    let payload = k.payload_segment(&k.claims(json!({})));
    let jwks_bytes = &k.jwks_bytes;
    let issuer = &k.issuer;
    vec![
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
            &[&bearer(&k.hs(jwks_bytes, &k.claims(json!({}))))],
            refused(401, ALG),
        ),
        row(
            "HS256 keyed with the issuer's public key PEM",
            To::In,
            &[&bearer(
                &k.hs(issuer.public_pem.as_bytes(), &k.claims(json!({}))),
            )],
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
    ]
}

/// `kid` tricks, signed with the issuer's real key: only the `kid` is wrong.
fn kid_tricks(k: &Kit) -> Vec<Row> {
    vec![
        row(
            "kid with path traversal",
            To::In,
            &[&bearer(&k.rs(
                json!({"alg": "RS256", "kid": "../../../../../../etc/passwd"}),
                &k.claims(json!({})),
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "kid with SQL",
            To::In,
            &[&bearer(&k.rs(
                json!({"alg": "RS256", "kid": "x' UNION SELECT key FROM keys WHERE '1'='1"}),
                &k.claims(json!({})),
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "kid of 3000 characters with control characters",
            To::In,
            &[&bearer(&k.rs(
                json!({"alg": "RS256", "kid": format!("\u{0}\r\n{}", "k".repeat(3000))}),
                &k.claims(json!({})),
            ))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "kid not a string",
            To::In,
            &[&bearer(&k.rs(
                json!({"alg": "RS256", "kid": 1}),
                &k.claims(json!({})),
            ))],
            refused(401, MALFORMED),
        ),
        row(
            "no kid",
            To::In,
            &[&bearer(
                &k.rs(json!({"alg": "RS256"}), &k.claims(json!({}))),
            )],
            refused(401, ""),
        ),
    ]
}

/// Header members that point at keys (`jku`, `x5u`, `jwk`): never followed.
fn key_pointers(k: &Kit) -> Vec<Row> {
    let kid = &k.kid;
    let key_url = &k.key_url;
    let attacker_jwk = k.attacker_jwk();
    vec![
        row(
            "jku to the attacker's key server",
            To::In,
            &[&bearer(&k.with_attacker(json!({"jku": key_url})))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "x5u to the attacker's key server",
            To::In,
            &[&bearer(&k.with_attacker(json!({"x5u": key_url})))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "the attacker's key embedded as jwk",
            To::In,
            &[&bearer(&k.with_attacker(json!({"jwk": attacker_jwk})))],
            refused(401, UNKNOWN_KID),
        ),
        row(
            "the attacker's key under the issuer's kid, with jku",
            To::In,
            &[&bearer(
                &k.with_attacker(json!({"kid": kid, "jku": key_url})),
            )],
            refused(401, "the token's signature is invalid"),
        ),
    ]
}

/// `crit` (RFC 7515 §4.1.11): an extension the recipient does not understand makes the
/// token invalid, even with the issuer's own signature.
fn crit(k: &Kit) -> Vec<Row> {
    let kid = &k.kid;
    vec![
    row(
        "crit naming an unknown extension, issuer-signed",
        To::In,
        &[&bearer(&k.rs(
            json!({"alg": "RS256", "kid": kid, "crit": ["urn:example:unknown"], "urn:example:unknown": true}),
            &k.claims(json!({})),
        ))],
        refused(401, MALFORMED),
    ),
    row(
        "crit b64:false (unencoded payload), issuer-signed",
        To::In,
        &[&bearer(&k.rs(
            json!({"alg": "RS256", "kid": kid, "b64": false, "crit": ["b64"]}),
            &k.claims(json!({})),
        ))],
        refused(401, MALFORMED),
    ),
    row(
        "crit empty, issuer-signed",
        To::In,
        &[&bearer(&k.rs(
            json!({"alg": "RS256", "kid": kid, "crit": []}),
            &k.claims(json!({})),
        ))],
        refused(401, MALFORMED),
    ),
    ]
}

/// Bytes an HTTP client would refuse to send.
// Long by design: a table, one row per spelling.
fn raw_bytes(k: &Kit) -> Vec<Row> {
    let good = &k.good;
    let many_headers: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("x-filler-{i}: {i}").into_bytes())
        .collect();
    vec![
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
                    auth_line(&bearer(good)).as_slice(),
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
    ]
}

/// Nested `act` bombs and `act` of the wrong shape.
fn act_shapes(k: &Kit) -> Vec<Row> {
    vec![
        row(
            "act nested 600 deep",
            To::In,
            &[&bearer(&k.act_bomb(600, r#"{"act":"#))],
            refused(401, MALFORMED),
        ),
        row(
            "act nested 60 deep",
            To::In,
            &[&bearer(&k.act_bomb(60, r#"{"client_id":"x","act":"#))],
            refused(401, "the token's delegation chain is too deep"),
        ),
        row(
            "act a string",
            To::In,
            &[&bearer(&k.signed(&k.claims(json!({"act": AGENT}))))],
            refused(401, CLAIMS),
        ),
        row(
            "act an array of 1000 actors",
            To::In,
            &[&bearer(
                &k.signed(&k.claims(json!({"act": vec![json!({}); 1000]}))),
            )],
            refused(401, CLAIMS),
        ),
    ]
}

/// Claims: expiry, audience, issuer, and values of the wrong type or with control characters.
// Long by design: a table, one row per claim.
fn claims(k: &Kit) -> Vec<Row> {
    let forever = k.signed(&k.claims(json!({"exp": 253_402_300_799_u64})));
    let issuer_url = &k.issuer_url;
    vec![
        row(
            "expired",
            To::In,
            &[&bearer(&k.signed(&k.claims(json!({"exp": now() - 3600}))))],
            refused(401, "the token has expired"),
        ),
        row(
            "wrong audience",
            To::In,
            &[&bearer(&k.signed(&k.claims(
                json!({"aud": "spiffe://demo.example.com/agent/reviewer-ops"}),
            )))],
            refused(401, "the token is not meant for this service"),
        ),
        row(
            "audience a list of objects",
            To::In,
            &[&bearer(
                &k.signed(&k.claims(json!({"aud": [{"a": AGENT}]}))),
            )],
            refused(401, ""),
        ),
        row(
            "untrusted issuer, issuer-signed",
            To::In,
            &[&bearer(&k.signed(&k.claims(
                json!({"iss": "https://evil.example.com/realms/demo"}),
            )))],
            refused(401, "the token's issuer is not trusted"),
        ),
        row(
            "issuer an array",
            To::In,
            &[&bearer(&k.signed(&k.claims(json!({"iss": [issuer_url]}))))],
            refused(401, "the token's issuer is not trusted"),
        ),
        row(
            "exp a string",
            To::In,
            &[&bearer(&k.signed(
                &k.claims(json!({"exp": (now() + 300).to_string()})),
            ))],
            refused(401, ""),
        ),
        row(
            "exp 1e300",
            To::In,
            &[&bearer(&k.signed(&k.claims(json!({"exp": 1e300}))))],
            refused(401, ""),
        ),
        // An expiry past the year 9999 is no date an issuer means: refused, not summed.
        row(
            "exp at u64::MAX, issuer-signed",
            To::In,
            &[&bearer(&k.signed(&k.claims(json!({"exp": u64::MAX}))))],
            refused(401, "the token's times are out of range"),
        ),
        // The last second of 9999 is valid (the issuer signed it), and the verified-token
        // cache, which keeps an entry until exp, must cope with the largest exp there is.
        row(
            "exp at the end of 9999, issuer-signed",
            To::In,
            &[&bearer(&forever)],
            Expect::PassesWithout(vec![]),
        ),
        row(
            "exp at the end of 9999 again (from the verified-token cache)",
            To::In,
            &[&bearer(&forever)],
            Expect::PassesWithout(vec![]),
        ),
        row(
            "sub an object (an injection operator)",
            To::In,
            &[&bearer(&k.signed(&k.claims(json!({"sub": {"$ne": null}}))))],
            refused(401, ""),
        ),
        row(
            "username with CR LF (a header injection through a claim)",
            To::In,
            &[&bearer(&k.signed(&k.claims(
                json!({"preferred_username": "alice\r\nx-actbridge-subject: root"}),
            )))],
            refused(401, ""),
        ),
        row(
            "username with NUL",
            To::In,
            &[&bearer(&k.signed(
                &k.claims(json!({"preferred_username": "alice\u{0}root"})),
            ))],
            refused(401, ""),
        ),
        row(
            "a token for another audience (the document service)",
            To::In,
            &[&bearer(&k.signed(&k.claims(
                json!({"aud": "spiffe://demo.example.com/service/document-service"}),
            )))],
            refused(401, "the token is not meant for this service"),
        ),
    ]
}

/// Forged identity and direction headers.
fn forged_headers(k: &Kit) -> Vec<Row> {
    let good = &k.good;
    vec![
        raw_row(
            "forged identity headers beside a good token",
            To::In,
            head(
                To::In,
                "/data",
                &[
                    auth_line(&bearer(good)).as_slice(),
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
    ]
}

/// The outbound listener.
fn outbound(k: &Kit) -> Vec<Row> {
    let good_out = &k.good_out;
    let kid = &k.kid;
    let key_url = &k.key_url;
    let none_header = k.header_segment("none");
    let out_payload = k.payload_segment(&k.delegated_claims(json!({})));
    let attacker = &k.attacker;
    vec![
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
        &[&bearer(&k.signed(&k.delegated_claims(
            json!({"padding": "x".repeat(9000)}),
        )))],
        refused(401, "the token is too large"),
    ),
    row(
        "outbound, crit naming an unknown extension, issuer-signed",
        To::Out,
        &[&bearer(&k.rs(
            json!({"alg": "RS256", "kid": kid, "crit": ["urn:example:unknown"], "urn:example:unknown": 1}),
            &k.delegated_claims(json!({})),
        ))],
        refused(401, MALFORMED),
    ),
    row(
        "outbound, the attacker's key with jku",
        To::Out,
        &[&bearer(&jws(
            json!({"alg": "RS256", "kid": "attacker-1", "jku": key_url}),
            &k.delegated_claims(json!({})),
            &attacker.key,
            Algorithm::RS256,
        ))],
        refused(401, UNKNOWN_KID),
    ),
    row(
        "outbound, two authorization headers",
        To::Out,
        &[&bearer(good_out), &bearer(good_out)],
        refused(401, ""),
    ),
    row(
        "outbound, expired delegation",
        To::Out,
        &[&bearer(&k.signed(&k.delegated_claims(
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
                auth_line(&bearer(good_out)).as_slice(),
                b"x-actbridge-direction: inbound",
            ],
        ),
        Expect::PassesWithout(vec![good_out.clone()]),
    ),
    ]
}
