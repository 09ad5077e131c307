//! Test harness: a real token service on 127.0.0.1:0, a reqwest client, the demo realm plus
//! test-only clients, and client keys for `private_key_jwt`.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::claims::now;
use crate::pem::encode as pem_wrap;
use crate::{Realm, TokenService};

pub(super) const DEMO_REALM: &str = include_str!("../../../../demo/realm.yaml");
/// The front end users log in through (the agents' clients have no direct access grants).
pub(super) const PORTAL: &str = "agent-portal";
pub(super) const PORTAL_SECRET: &str = "agent-portal-demo-secret";
pub(super) const OPS: &str = "spiffe://demo.example.com/agent/reviewer-ops";
pub(super) const OPS_SECRET: &str = "reviewer-ops-demo-secret";
pub(super) const GENERAL: &str = "spiffe://demo.example.com/agent/reviewer-general";
pub(super) const GENERAL_SECRET: &str = "reviewer-general-demo-secret";
pub(super) const TECH: &str = "spiffe://demo.example.com/agent/summarizer-tech";
pub(super) const TECH_SECRET: &str = "summarizer-tech-demo-secret";
pub(super) const DOCS: &str = "spiffe://demo.example.com/service/document-service";
pub(super) const DOCS_SECRET: &str = "document-service-demo-secret";
pub(super) const ALICE_ID: &str = "835414c6-012e-4647-8369-a9f46e3b9cad";
pub(super) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub(super) const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub(super) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client key pair for `private_key_jwt`: the signing half and the registered PEM.
pub(super) struct ClientKeyPair {
    pub(super) signing: EncodingKey,
    pub(super) public_pem: String,
}

/// One RSA, one EC P-256 and one Ed25519 client key, made once per test binary.
pub(super) struct ClientKeys {
    pub(super) rsa: ClientKeyPair,
    pub(super) ec: ClientKeyPair,
    pub(super) ed: ClientKeyPair,
    /// An RSA key nobody registered.
    pub(super) stranger: ClientKeyPair,
}

fn rsa_pair() -> ClientKeyPair {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let private = pem_wrap(
        "PRIVATE KEY",
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair)
            .unwrap()
            .as_ref(),
    );
    let public = pem_wrap("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
    ClientKeyPair {
        signing: EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
        public_pem: public,
    }
}

pub(super) fn client_keys() -> &'static ClientKeys {
    static KEYS: OnceLock<ClientKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let ec = ClientKeyPair {
            signing: EncodingKey::from_ec_der(ec.to_pkcs8v1().unwrap().as_ref()),
            public_pem: pem_wrap("PUBLIC KEY", ec.public_key().as_der().unwrap().as_ref()),
        };
        let ed = Ed25519KeyPair::generate().unwrap();
        let ed = ClientKeyPair {
            signing: EncodingKey::from_ed_der(ed.to_pkcs8v1().unwrap().as_ref()),
            public_pem: pem_wrap("PUBLIC KEY", ed.public_key().as_der().unwrap().as_ref()),
        };
        ClientKeys {
            rsa: rsa_pair(),
            ec,
            ed,
            stranger: rsa_pair(),
        }
    })
}

/// The service's signing key as PEM, made once (exercises the PEM loading path too).
pub(super) fn service_key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        pem_wrap(
            "PRIVATE KEY",
            AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'_>>::as_der(&pair)
                .unwrap()
                .as_ref(),
        )
    })
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("      {l}\n")).collect()
}

/// The demo realm plus clients that exercise the refusals and `private_key_jwt`.
pub(super) fn test_realm_yaml() -> String {
    let keys = client_keys();
    let jwt_client = |id: &str, pem: &str| {
        format!(
            "  - client_id: {id}\n    public_key_pem: |\n{}    service_account: true\n    \
             direct_access_grants: true\n    audiences: [{id}]\n    scopes: [openid, documents.read]\n",
            indent(pem)
        )
    };
    let mut yaml = DEMO_REALM.to_string();
    yaml.push_str(
        "  - client_id: public-cli\n    public: true\n    direct_access_grants: true\n    \
         audiences: [public-cli]\n    scopes: [openid, profile, documents.read]\n\
         \x20 - client_id: no-direct\n    secret: no-direct-secret\n    scopes: [openid]\n\
         \x20 - client_id: no-exchange\n    secret: no-exchange-secret\n    service_account: true\n    \
         direct_access_grants: true\n    audiences: [no-exchange]\n    scopes: [openid, documents.read]\n",
    );
    yaml.push_str(&jwt_client("jwt-rsa", &keys.rsa.public_pem));
    yaml.push_str(&jwt_client("jwt-ec", &keys.ec.public_pem));
    yaml.push_str(&jwt_client("jwt-ed", &keys.ed.public_pem));
    yaml
}

/// A running token service and a client for it. Stops the server on drop.
pub(super) struct Harness {
    pub(super) sts: Arc<TokenService>,
    pub(super) http: reqwest::Client,
    shutdown: CancellationToken,
    pub(super) server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Harness {
    /// The test realm (demo + test clients).
    pub(super) async fn start() -> Harness {
        Harness::with_realm(&test_realm_yaml()).await
    }

    pub(super) async fn with_realm(yaml: &str) -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let realm = Realm::from_yaml_str(yaml).unwrap();
        let sts = TokenService::new(realm, &url, Some(service_key_pem().as_bytes())).unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(Arc::clone(&sts).serve(listener, shutdown.clone()));
        Harness {
            sts,
            http: reqwest::Client::new(),
            shutdown,
            server: Some(server),
        }
    }

    /// Stops the server and waits for `serve` to return.
    pub(super) async fn stop(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.server.take().unwrap().await.unwrap()
    }

    /// POSTs a form to the token endpoint; returns status and JSON body.
    pub(super) async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        self.token_with(self.http.post(self.sts.token_endpoint()).form(form))
            .await
    }

    /// Like [`Harness::token`], with RFC 6749 §2.3.1 Basic credentials (form-urlencoded halves).
    pub(super) async fn token_basic(
        &self,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let req = self
            .http
            .post(self.sts.token_endpoint())
            .header("authorization", basic(id, secret))
            .form(form);
        self.token_with(req).await
    }

    async fn token_with(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        (status, body)
    }

    /// A user token via the password grant, asserting success.
    pub(super) async fn password(
        &self,
        client: &str,
        secret: &str,
        user: &str,
        pw: &str,
    ) -> String {
        let (status, body) = self
            .token(&[
                ("grant_type", "password"),
                ("client_id", client),
                ("client_secret", secret),
                ("username", user),
                ("password", pw),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A service-account token, asserting success.
    pub(super) async fn client_credentials(&self, client: &str, secret: &str) -> String {
        let (status, body) = self
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", client),
                ("client_secret", secret),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// A token exchange by `client`, optionally with an actor token, extra parameters last.
    pub(super) async fn exchange(
        &self,
        client: (&str, &str),
        subject: &str,
        actor: Option<&str>,
        extra: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", client.0),
            ("client_secret", client.1),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN),
        ];
        if let Some(actor) = actor {
            form.push(("actor_token", actor));
            form.push(("actor_token_type", ACCESS_TOKEN));
        }
        form.extend_from_slice(extra);
        self.token(&form).await
    }

    /// Standard claims for a token forged with `sign_claims`.
    pub(super) fn forged_base(&self, aud: &str, exp_in: i64) -> Value {
        json!({
            "iss": self.sts.issuer(), "sub": ALICE_ID, "aud": aud, "azp": aud,
            "iat": now(), "exp": (now() as i64 + exp_in), "jti": "forged", "typ": "Bearer",
            "scope": "openid profile email documents.read documents.write",
            "preferred_username": "alice", "groups": ["engineering", "finance"]
        })
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))`.
pub(super) fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// The unverified claims of a JWT.
pub(super) fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The header of a JWT.
pub(super) fn header(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

/// Asserts a Keycloak-shaped refusal.
#[track_caller]
pub(super) fn assert_refused(
    got: &(StatusCode, Value),
    status: u16,
    error: &str,
    description: &str,
) {
    let (s, body) = got;
    assert_eq!(s.as_u16(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_description"], description, "{body}");
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only error and error_description: {body}"
    );
}

/// A `private_key_jwt` assertion.
pub(super) fn assertion(
    key: &EncodingKey,
    alg: Algorithm,
    client_id: &str,
    claims: Value,
) -> String {
    let mut all = json!({ "iss": client_id, "sub": client_id, "iat": now(), "exp": now() + 60,
                          "jti": uuid::Uuid::new_v4().to_string() });
    for (k, v) in claims.as_object().unwrap() {
        if v.is_null() {
            all.as_object_mut().unwrap().remove(k);
        } else {
            all[k] = v.clone();
        }
    }
    jsonwebtoken::encode(&Header::new(alg), &all, key).unwrap()
}
