//! The token service the demo walks against: the embedded one, in process (`make demo`),
//! or a real Keycloak (`make demo-keycloak`). The story is the same; what differs is
//! how each records the agent (a nested `act`, or `azp`: docs/security.md), how the
//! sidecar is told so, and how the demo comes by an expired token.

use std::sync::Arc;
use std::time::Duration;

use actbridge_sts::TokenService;
use serde_json::{Value, json};

use super::keycloak::{DemoKeycloak, EXPIRING_PORTAL};
use super::{AGENT, DemoResult, claims, now_secs};

/// The leeway the demo's sidecar gives Keycloak's tokens: short, so that the expired
/// token (one second of life) is refused after a short wait.
const KEYCLOAK_LEEWAY_SECS: u64 = 1;

pub(super) enum Issuer {
    /// The embedded token service with demo/realm.yaml.
    Embedded(Arc<TokenService>),
    /// A real Keycloak with the keycloak overlay's realm.
    Keycloak(Box<DemoKeycloak>),
}

impl Issuer {
    pub(super) fn issuer(&self) -> String {
        match self {
            Issuer::Embedded(sts) => sts.issuer(),
            Issuer::Keycloak(kc) => kc.issuer(),
        }
    }

    pub(super) fn token_endpoint(&self) -> String {
        match self {
            Issuer::Embedded(sts) => sts.token_endpoint(),
            Issuer::Keycloak(kc) => kc.token_endpoint(),
        }
    }

    /// summarizer-tech's client secret.
    pub(super) fn client_secret(&self) -> &str {
        match self {
            Issuer::Embedded(_) => "summarizer-tech-demo-secret",
            Issuer::Keycloak(kc) => kc.client_secret.trim(),
        }
    }

    /// The sidecar's settings for this issuer, beside `issuer` and `audiences`.
    pub(super) fn issuer_settings(&self) -> String {
        match self {
            Issuer::Embedded(_) => String::new(),
            Issuer::Keycloak(_) => format!(
                "    actors_from: azp\n    agent_clients: ['spiffe://demo.example.com/agent/*']\n    leeway: {KEYCLOAK_LEEWAY_SECS}s\n"
            ),
        }
    }

    /// Whether the sidecar sends its own token as `actor_token` (Keycloak ignores it).
    pub(super) fn send_actor_token(&self) -> bool {
        matches!(self, Issuer::Embedded(_))
    }

    /// A token of this issuer for alice (`sub`) whose `exp` has passed: signed as one by
    /// the embedded service; from Keycloak, issued through a front end whose tokens
    /// live a second, and presented once that second and the leeway are over.
    pub(super) async fn expired_token(
        &self,
        http: &reqwest::Client,
        sub: &Value,
    ) -> DemoResult<String> {
        match self {
            Issuer::Embedded(sts) => Ok(sts.sign_claims(&json!({
                "iss": sts.issuer(), "sub": sub, "preferred_username": "alice", "aud": AGENT,
                "iat": now_secs() - 900, "exp": now_secs() - 600,
            }))),
            Issuer::Keycloak(_) => {
                let token = self.login_through(http, EXPIRING_PORTAL, "alice").await?;
                let exp = claims(&token)?["exp"].as_u64().unwrap_or(0);
                let wait = (exp + KEYCLOAK_LEEWAY_SECS + 1).saturating_sub(now_secs());
                tokio::time::sleep(Duration::from_secs(wait)).await;
                Ok(token)
            }
        }
    }

    /// `user`'s token from the front end (`agent-portal`), password `{user}123`.
    pub(super) async fn login(&self, http: &reqwest::Client, user: &str) -> DemoResult<String> {
        self.login_through(http, ("agent-portal", "agent-portal-demo-secret"), user)
            .await
    }

    async fn login_through(
        &self,
        http: &reqwest::Client,
        (client_id, secret): (&str, &str),
        user: &str,
    ) -> DemoResult<String> {
        let password = format!("{user}123");
        let resp = http
            .post(self.token_endpoint())
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", &password),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", self.login_scope()),
            ])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("login failed: {v}"))
    }

    /// The scope alice logs in with: the embedded service only narrows in an exchange, so
    /// her token must hold what the agent will ask for; Keycloak grants the requester's
    /// optional scopes whatever the login held (docs/token-service.md).
    fn login_scope(&self) -> &'static str {
        match self {
            Issuer::Embedded(_) => "openid documents.read",
            Issuer::Keycloak(_) => "openid",
        }
    }

    /// How the delegated token `d` names the agent, as printed, and whether it names
    /// exactly summarizer-tech, once.
    pub(super) fn actor(&self, d: &Value) -> (String, bool) {
        match self {
            Issuer::Embedded(_) => (
                format!("act = {}  (the agent acting for her, named once)", d["act"]),
                d["act"]["client_id"] == AGENT && d["act"].get("act").is_none(),
            ),
            Issuer::Keycloak(_) => (
                format!(
                    "azp = {}  (the agent that exchanged it: Keycloak's one actor; no act)",
                    d["azp"]
                ),
                d["azp"] == AGENT && d.get("act").is_none(),
            ),
        }
    }
}
