//! The embedded token service against the real Keycloak 26.7.3: the same requests, from
//! the same realm file (demo/realm.yaml; tests/support/keycloak.rs creates it in
//! Keycloak), sent to both, and what comes back compared: the status, `error` and
//! `error_description` of a refusal; for a token, the response's members and the claims
//! (names, JSON types, and values, a user's id read as the user's name, times and ids as
//! their type); the discovery document's members and the JWKS's key members.
//! docs/token-service.md lists where the two differ on purpose ([`ON_PURPOSE`]); any
//! other difference fails here, and so does a listed one that no longer occurs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::support::keycloak;
use crate::support::world::{
    AGENT, AGENT_SECRET, DOCUMENT_SERVICE, PORTAL, PORTAL_SECRET, Sts, agent_id, claims_of,
};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const OPS_SECRET: &str = "reviewer-ops-demo-secret";
/// A client only summarizer-tech's audience scope `agent-service-audience` adds.
const AGENT_SERVICE: &str = "spiffe://demo.example.com/service/agent-service";

/// What only Keycloak answers, left out of the comparison when the embedded service
/// answers nothing in its place: its sessions (`sid`, `session_state`), refresh and ID
/// tokens, the profile and role claims actbridge does not read, its certificate chain,
/// and every discovery member of a feature the embedded service does not serve (browser
/// flows, user info, registration, CIBA, PAR, …). docs/token-service.md says why.
const KEYCLOAK_ONLY: &[&str] = &[
    "claim.acr",
    "claim.sid",
    "claim.email_verified",
    "claim.given_name",
    "claim.family_name",
    "claim.clientAddress",
    "claim.clientHost",
    "claim.realm_access",
    "claim.resource_access",
    "response.id_token",
    "response.refresh_token",
    "response.refresh_expires_in",
    "response.not-before-policy",
    "response.session_state",
    "jwks.RSA.x5c",
    "jwks.RSA.x5t",
    "jwks.RSA.x5t#S256",
    "discovery.*",
];

/// The differences kept on purpose: (probe, member, or `*` for the whole answer).
/// docs/token-service.md explains each.
const ON_PURPOSE: &[(&str, &str)] = &[
    // Keycloak adds the requester's default client scopes (`profile`, `email`) to every
    // token and drops `openid` in an exchange; the embedded service grants what is asked.
    ("password: alice at the front end", "claim.scope"),
    ("password: alice at the front end", "response.scope"),
    ("password: with documents.read", "claim.scope"),
    ("password: with documents.read", "response.scope"),
    ("exchange: for the agent itself", "claim.scope"),
    ("exchange: for the agent itself", "response.scope"),
    ("exchange: no audience", "claim.scope"),
    ("exchange: no audience", "response.scope"),
    ("exchange: with an actor token", "claim.scope"),
    ("exchange: with an actor token", "response.scope"),
    (
        "exchange: an audience an audience scope adds, the scope asked for",
        "claim.scope",
    ),
    (
        "exchange: an audience an audience scope adds, the scope asked for",
        "response.scope",
    ),
    // Asked for nothing, Keycloak grants the default scopes; the embedded service every
    // scope of the client.
    ("client_credentials: an agent", "claim.scope"),
    ("client_credentials: an agent", "response.scope"),
    // Keycloak makes an audience available to a client's exchanges through the client's
    // Audience mappers, which name it in the client's own tokens too; the embedded service
    // keeps `audiences` (its own tokens) apart from `exchange_audiences`.
    ("client_credentials: an agent", "claim.aud"),
    ("exchange: no audience", "claim.aud"),
    // The embedded service only narrows: a scope the subject token does not hold is
    // refused; Keycloak grants any optional scope of the requester.
    ("exchange: for the document service, documents.read", "*"),
    // The delegation extension: the embedded service nests `act` from the actor token;
    // Keycloak accepts the actor token and ignores it.
    ("exchange: with an actor token", "claim.act"),
];

/// One token service as the probes see it.
struct Side {
    name: &'static str,
    issuer: String,
    http: reqwest::Client,
}

impl Side {
    fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer)
    }

    async fn post(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(self.token_endpoint())
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    async fn get(&self, url: &str) -> Value {
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A token a probe needs: it must be issued.
    async fn token(&self, form: &[(&str, &str)]) -> String {
        let (status, body) = self.post(form).await;
        assert_eq!(status, 200, "{}: {body}", self.name);
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// What a side answered, in the terms the sides are compared on.
type Answer = BTreeMap<String, String>;

/// A user's id on this side, to read it back as the user.
struct Ids(BTreeMap<String, String>);

impl Ids {
    fn name(&self, v: &Value) -> String {
        match v.as_str().and_then(|id| self.0.get(id)) {
            Some(user) => format!("<{user}>"),
            None => shape(v),
        }
    }
}

/// A JSON value's type, for members whose value is the side's own (times, ids).
fn shape(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_string()
}

/// A list of words in any order (`scope`, `aud`, `groups`), keeping whether it was one
/// string or an array.
fn words(v: &Value) -> String {
    let mut w: Vec<String> = match v {
        Value::String(s) => s.split(' ').map(str::to_string).collect(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or("?").to_string())
            .collect(),
        other => return shape(other),
    };
    w.sort();
    let kind = if v.is_string() { "string" } else { "array" };
    format!("{kind} {}", w.join(" "))
}

fn answer(side: &Side, ids: &Ids, (status, body): (u16, Value)) -> Answer {
    let mut a = Answer::new();
    a.insert("status".into(), status.to_string());
    if status != 200 {
        for k in ["error", "error_description"] {
            a.insert(k.into(), body[k].as_str().unwrap_or("-").to_string());
        }
        return a;
    }
    for (k, v) in body.as_object().unwrap() {
        let described = match k.as_str() {
            "token_type" | "issued_token_type" => v.as_str().unwrap_or("?").to_string(),
            "scope" => words(v),
            _ => shape(v),
        };
        a.insert(format!("response.{k}"), described);
    }
    let claims = claims_of(body["access_token"].as_str().unwrap());
    for (k, v) in claims.as_object().unwrap() {
        let described = match k.as_str() {
            "iss" if v == &Value::from(side.issuer.as_str()) => "<issuer>".into(),
            "sub" => ids.name(v),
            "aud" | "scope" | "groups" => words(v),
            "exp" | "iat" | "nbf" | "auth_time" | "jti" | "sid" | "session_state" => shape(v),
            "act" => v.to_string(),
            _ if v.is_string() => v.as_str().unwrap().to_string(),
            _ => v.to_string(),
        };
        a.insert(format!("claim.{k}"), described);
    }
    a
}

/// The differences between two answers: (probe, member, a line that shows both).
fn differences(
    probe: &'static str,
    embedded: &Answer,
    real: &Answer,
) -> Vec<(&'static str, String, String)> {
    let keys: BTreeSet<&String> = embedded.keys().chain(real.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (embedded.get(k), real.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (None, Some(_)) if keycloak_only(k) => None,
            (a, b) => Some((
                probe,
                k.clone(),
                format!(
                    "{probe} | {k} | embedded {} | keycloak {}",
                    a.map_or("-", String::as_str),
                    b.map_or("-", String::as_str)
                ),
            )),
        })
        .collect()
}

fn keycloak_only(member: &str) -> bool {
    KEYCLOAK_ONLY.iter().any(|k| match k.strip_suffix('*') {
        Some(prefix) => member.starts_with(prefix),
        None => member == *k,
    })
}

/// Every probe on one side: (probe, its raw answer), and the side's user ids.
// Long by design: the probe list, one request each.
async fn probe(side: &Side) -> (Ids, Vec<(&'static str, (u16, Value))>) {
    let ops = agent_id("reviewer-ops");
    let portal = [("client_id", PORTAL), ("client_secret", PORTAL_SECRET)];
    let tech = [("client_id", AGENT), ("client_secret", AGENT_SECRET)];
    let with = |client: &[(&'static str, &'static str)], rest: &[(&'static str, &str)]| {
        let mut f: Vec<(&str, String)> = client.iter().map(|(k, v)| (*k, v.to_string())).collect();
        f.extend(rest.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let login = |user: &'static str, pw: &'static str, scope: &'static str| {
        with(
            &portal,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
                ("scope", scope),
            ],
        )
    };
    let alice = side
        .token(&pairs(&login("alice", "alice123", "openid")))
        .await;
    let own = side
        .token(&pairs(&with(
            &tech,
            &[("grant_type", "client_credentials")],
        )))
        .await;
    let ops_client = [("client_id", ops.as_str()), ("client_secret", OPS_SECRET)];
    let exchange = |client: &[(&'static str, &str)],
                    subject: &str,
                    rest: &[(&'static str, &str)]|
     -> Vec<(&'static str, String)> {
        let mut f: Vec<(&'static str, String)> =
            client.iter().map(|(k, v)| (*k, v.to_string())).collect();
        f.push(("grant_type", EXCHANGE.into()));
        f.push(("subject_token", subject.into()));
        f.push(("subject_token_type", ACCESS_TOKEN.into()));
        f.extend(rest.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let ops_only = side
        .token(&pairs(&exchange(
            &ops_client,
            &alice,
            &[("audience", &ops)],
        )))
        .await;
    let mut ids = BTreeMap::new();
    ids.insert(
        claims_of(&alice)["sub"].as_str().unwrap().to_string(),
        "alice".to_string(),
    );
    ids.insert(
        claims_of(&own)["sub"].as_str().unwrap().to_string(),
        "summarizer-tech's service account".to_string(),
    );

    let tech_pairs: Vec<(&str, &str)> = tech.to_vec();
    let probes: Vec<(&'static str, Vec<(&str, String)>)> = vec![
        (
            "password: alice at the front end",
            login("alice", "alice123", "openid"),
        ),
        (
            "password: with documents.read",
            login("alice", "alice123", "openid documents.read"),
        ),
        (
            "password: wrong password",
            login("alice", "wrong", "openid"),
        ),
        ("password: unknown user", login("mallory", "x", "openid")),
        (
            "password: unknown scope",
            login("alice", "alice123", "openid payroll.write"),
        ),
        (
            "password: through an agent's client",
            with(
                &tech,
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "alice123"),
                ],
            ),
        ),
        (
            "client_credentials: an agent",
            with(&tech, &[("grant_type", "client_credentials")]),
        ),
        (
            "client_credentials: wrong secret",
            vec![
                ("client_id", AGENT.to_string()),
                ("client_secret", "wrong".to_string()),
                ("grant_type", "client_credentials".to_string()),
            ],
        ),
        (
            "client_credentials: a client without a service account",
            with(&portal, &[("grant_type", "client_credentials")]),
        ),
        (
            "grant: unknown grant type",
            with(&tech, &[("grant_type", "urn:example:nothing")]),
        ),
        (
            "exchange: for the agent itself",
            exchange(&tech_pairs, &alice, &[("audience", AGENT)]),
        ),
        (
            "exchange: for the document service, documents.read",
            exchange(
                &tech_pairs,
                &alice,
                &[("audience", DOCUMENT_SERVICE), ("scope", "documents.read")],
            ),
        ),
        ("exchange: no audience", exchange(&tech_pairs, &alice, &[])),
        (
            "exchange: unknown audience",
            exchange(
                &tech_pairs,
                &alice,
                &[("audience", "spiffe://demo.example.com/service/payroll")],
            ),
        ),
        (
            "exchange: an audience the client has no mapper for",
            exchange(&tech_pairs, &alice, &[("audience", PORTAL)]),
        ),
        (
            "exchange: an audience only an audience scope adds, the scope not asked for",
            exchange(&tech_pairs, &alice, &[("audience", AGENT_SERVICE)]),
        ),
        (
            "exchange: an audience an audience scope adds, the scope asked for",
            exchange(
                &tech_pairs,
                &alice,
                &[
                    ("audience", AGENT_SERVICE),
                    ("scope", "agent-service-audience"),
                ],
            ),
        ),
        (
            "exchange: a scope the client may not have",
            exchange(
                &tech_pairs,
                &alice,
                &[("audience", DOCUMENT_SERVICE), ("scope", "payroll.write")],
            ),
        ),
        (
            "exchange: a subject that is no token",
            exchange(&tech_pairs, "x.y.z", &[("audience", AGENT)]),
        ),
        (
            "exchange: the client not in the subject's audience",
            exchange(&tech_pairs, &ops_only, &[("audience", DOCUMENT_SERVICE)]),
        ),
        (
            "exchange: a refresh token asked for",
            exchange(
                &tech_pairs,
                &alice,
                &[
                    ("audience", AGENT),
                    (
                        "requested_token_type",
                        "urn:ietf:params:oauth:token-type:refresh_token",
                    ),
                ],
            ),
        ),
        (
            "exchange: by a client without token exchange",
            exchange(
                &[("client_id", PORTAL), ("client_secret", PORTAL_SECRET)],
                &alice,
                &[("audience", AGENT)],
            ),
        ),
        (
            "exchange: with an actor token",
            exchange(
                &tech_pairs,
                &alice,
                &[
                    ("audience", AGENT),
                    ("actor_token", &own),
                    ("actor_token_type", ACCESS_TOKEN),
                ],
            ),
        ),
        (
            "exchange: no subject_token_type",
            with(
                &tech,
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &alice),
                    ("audience", AGENT),
                ],
            ),
        ),
    ];
    let mut answers = Vec::new();
    for (name, form) in probes {
        answers.push((name, side.post(&pairs(&form)).await));
    }
    (Ids(ids), answers)
}

fn pairs<'a>(form: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The members of the discovery document and of each JWKS key, as one answer.
async fn documents(side: &Side) -> Answer {
    let discovery = side
        .get(&format!("{}/.well-known/openid-configuration", side.issuer))
        .await;
    let mut a = Answer::new();
    for (k, v) in discovery.as_object().unwrap() {
        a.insert(format!("discovery.{k}"), shape(v));
    }
    let jwks = side.get(discovery["jwks_uri"].as_str().unwrap()).await;
    for key in jwks["keys"].as_array().unwrap() {
        if key["use"] != "sig" {
            continue;
        }
        let kty = key["kty"].as_str().unwrap_or("?");
        for (k, v) in key.as_object().unwrap() {
            let described = match k.as_str() {
                "kty" | "use" | "alg" => v.as_str().unwrap_or("?").to_string(),
                _ => shape(v),
            };
            a.insert(format!("jwks.{kty}.{k}"), described);
        }
    }
    a
}

#[tokio::test]
async fn the_embedded_token_service_answers_as_keycloak_does() {
    let kc = keycloak::shared().await;
    let sts = Sts::start().await;
    let embedded = Side {
        name: "embedded",
        issuer: sts.service.issuer(),
        http: reqwest::Client::new(),
    };
    let real = Side {
        name: "keycloak",
        issuer: kc.issuer(),
        http: reqwest::Client::new(),
    };
    let (e_ids, e_answers) = probe(&embedded).await;
    let (k_ids, k_answers) = probe(&real).await;
    let mut found = Vec::new();
    for ((name, e), (_, k)) in e_answers.into_iter().zip(k_answers) {
        found.extend(differences(
            name,
            &answer(&embedded, &e_ids, e),
            &answer(&real, &k_ids, k),
        ));
    }
    found.extend(differences(
        "documents",
        &documents(&embedded).await,
        &documents(&real).await,
    ));
    let on_purpose = |(probe, member): &(&str, String)| {
        ON_PURPOSE
            .iter()
            .any(|(p, m)| p == probe && (*m == "*" || m == member))
    };
    let unexpected: Vec<&str> = found
        .iter()
        .filter(|(p, m, _)| !on_purpose(&(p, m.clone())))
        .map(|(_, _, line)| line.as_str())
        .collect();
    let gone: Vec<String> = ON_PURPOSE
        .iter()
        .filter(|(p, m)| {
            !found
                .iter()
                .any(|(fp, fm, _)| fp == p && (*m == "*" || m == fm))
        })
        .map(|(p, m)| format!("{p} | {m}"))
        .collect();
    assert!(
        unexpected.is_empty() && gone.is_empty(),
        "differences not listed as on purpose:\n{}\nlisted, no longer seen:\n{}",
        unexpected.join("\n"),
        gone.join("\n"),
    );
}
