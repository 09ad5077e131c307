//! The attacker's tools: keys, JWS over exact bytes, and the prepared material
//! ([`Kit`]) the table's rows forge their tokens from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::support::pem;
use crate::support::world::AGENT;

/// An RSA-2048 private key as PKCS#8 PEM, and the same as a signing key, and its public
/// key as SPKI PEM (the text an attacker would find published).
pub struct RsaKey {
    pub pem: String,
    pub key: EncodingKey,
    pub public_pem: String,
}

pub fn rsa_key() -> RsaKey {
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

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS over exactly these header and payload bytes.
pub fn jws_raw(header: &[u8], payload: &[u8], key: &EncodingKey, alg: Algorithm) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let sig = jsonwebtoken::crypto::sign(signing_input.as_bytes(), key, alg).unwrap();
    format!("{signing_input}.{sig}")
}

/// A compact JWS with this header (its `alg` must match `alg`) and these claims.
pub fn jws(header: Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    jws_raw(
        &serde_json::to_vec(&header).unwrap(),
        &serde_json::to_vec(claims).unwrap(),
        key,
        alg,
    )
}

pub fn now() -> u64 {
    actbridge::clock::now_secs()
}

/// The decoded JOSE header of a compact token.
pub fn claims_of_header(token: &str) -> Value {
    let h = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice(&h).unwrap()
}

/// What the rows forge from: the issuer's real key (the test holds it), an attacker's
/// key, the issuer's `kid`, its JWKS document, an attacker's key server, and a good token
/// for each listener.
pub struct Kit {
    pub issuer: RsaKey,
    pub attacker: RsaKey,
    pub kid: String,
    pub issuer_url: String,
    pub jwks_bytes: Vec<u8>,
    /// A URL on the attacker's key server: any request to it would mean actbridge
    /// followed a URL from a token header.
    pub key_url: String,
    /// A valid inbound token (alice, for the agent).
    pub good: String,
    /// A valid delegated token for the outbound route (alice → summarizer-tech).
    pub good_out: String,
}

impl Kit {
    /// alice's inbound claims with `patch` applied (a `null` member removes the claim).
    pub fn claims(&self, patch: Value) -> Value {
        let mut c = json!({
            "iss": self.issuer_url, "sub": "7f3e2a1c-0000-4000-8000-000000000001",
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
    }

    /// A delegated token's claims (as the outbound route needs): alice → summarizer-tech.
    pub fn delegated_claims(&self, patch: Value) -> Value {
        let mut c = self.claims(json!({"act": {"sub": "sa", "client_id": AGENT}}));
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    /// Signed with the issuer's real key under this header.
    pub fn rs(&self, header: Value, c: &Value) -> String {
        jws(header, c, &self.issuer.key, Algorithm::RS256)
    }

    /// Signed with the issuer's real key under its real `kid`.
    pub fn signed(&self, c: &Value) -> String {
        self.rs(json!({"alg": "RS256", "kid": self.kid}), c)
    }

    /// HS256 under the issuer's `kid`, keyed with `secret` (key confusion).
    pub fn hs(&self, secret: &[u8], c: &Value) -> String {
        jws(
            json!({"alg": "HS256", "kid": self.kid}),
            c,
            &EncodingKey::from_secret(secret),
            Algorithm::HS256,
        )
    }

    /// `act` nested `depth` deep, each level `level` followed by the next, issuer-signed.
    pub fn act_bomb(&self, depth: usize, level: &str) -> String {
        let mut p = serde_json::to_string(&self.claims(json!({}))).unwrap();
        p.pop(); // the closing brace
        p.push_str(r#","act":"#);
        p.push_str(&level.repeat(depth));
        p.push_str("{}");
        p.push_str(&"}".repeat(depth + 1));
        let t = jws_raw(
            format!(r#"{{"alg":"RS256","kid":"{}"}}"#, self.kid).as_bytes(),
            p.as_bytes(),
            &self.issuer.key,
            Algorithm::RS256,
        );
        assert!(t.len() < 8192, "the bomb must get past the size limit");
        t
    }

    /// The attacker's key as a JWK.
    pub fn attacker_jwk(&self) -> Value {
        let jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&self.attacker.key, Algorithm::RS256)
            .unwrap();
        serde_json::to_value(jwk).unwrap()
    }

    /// alice's claims signed with the attacker's key, header members `extra` added.
    pub fn with_attacker(&self, extra: Value) -> String {
        let mut h = json!({"alg": "RS256", "kid": "attacker-1"});
        for (k, v) in extra.as_object().unwrap() {
            h[k] = v.clone();
        }
        jws(
            h,
            &self.claims(json!({})),
            &self.attacker.key,
            Algorithm::RS256,
        )
    }

    /// A JOSE header segment `{"alg":<alg>,"kid":<the issuer's kid>}`, encoded.
    pub fn header_segment(&self, alg: &str) -> String {
        b64(format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, self.kid).as_bytes())
    }

    /// The payload segment of `claims`, encoded.
    pub fn payload_segment(&self, claims: &Value) -> String {
        b64(&serde_json::to_vec(claims).unwrap())
    }
}
