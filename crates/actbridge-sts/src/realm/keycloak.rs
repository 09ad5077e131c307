//! The realm as a real Keycloak (26.7) imports it: one source, the realm file, for the
//! embedded service and for Keycloak. [`Realm::keycloak_representation`] is the JSON that
//! `POST /admin/realms` takes; [`Realm::keycloak_client_scopes`] names the scopes to create
//! and attach afterwards, because a realm JSON that lists `clientScopes` replaces
//! Keycloak's built-in ones (`basic`, `profile`, `email`, …) and its tokens then carry no
//! `sub` (../shared/STACK.md).
//!
//! What maps to what:
//! - a user → a Keycloak user with the same id, a non-temporary password and membership of
//!   top-level groups named as its departments;
//! - a client → a confidential client (secret) or a public one; `service_account`,
//!   `direct_access_grants` and `standard_token_exchange` → `serviceAccountsEnabled`,
//!   `directAccessGrantsEnabled` and the `standard.token.exchange.enabled` attribute; no
//!   standard (browser) flow;
//! - `audiences` and `exchange_audiences` → `oidc-audience-mapper`s on the client (Keycloak
//!   lets a client exchange only for an audience its scopes make available; it narrows the
//!   exchanged token's `aud` to the requested one). Unlike the embedded service, a token
//!   the client gets at login names every one of them;
//! - `groups` → an `oidc-group-membership-mapper` (`groups`, not the full path) on every
//!   client;
//! - scopes other than Keycloak's built-in ones → optional client scopes of the client
//!   ([`Realm::keycloak_client_scope`]); an audience scope carries an Audience mapper.
//!
//! Not mapped (the embedded service's extensions): `jwt_svid` and `public_key_pem`
//! clients, capability tokens, `may_act`, nested `act` (Keycloak 26.7 ignores
//! `actor_token`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Credential, Realm};

/// Scopes every Keycloak realm has without being told.
const BUILT_IN_SCOPES: [&str; 9] = [
    "openid",
    "profile",
    "email",
    "roles",
    "web-origins",
    "acr",
    "basic",
    "address",
    "phone",
];

/// Whether every Keycloak realm has the scope `name` built in.
pub(super) fn is_built_in_scope(name: &str) -> bool {
    BUILT_IN_SCOPES.contains(&name)
}

impl Realm {
    /// The client scope `name` as `POST /admin/realms/{realm}/client-scopes` takes it:
    /// named in the token's `scope` when granted, and for an audience scope
    /// (`audience_scopes`) with an Audience mapper adding its audience.
    pub fn keycloak_client_scope(&self, name: &str) -> Value {
        let mut scope = json!({
            "name": name,
            "protocol": "openid-connect",
            "attributes": {"include.in.token.scope": "true"},
        });
        if let Some(audience) = self.audience_of_scope(name) {
            scope["protocolMappers"] = json!([audience_mapper("audience", audience)]);
        }
        scope
    }

    /// The realm in Keycloak's `RealmRepresentation` (the body of `POST /admin/realms`).
    pub fn keycloak_representation(&self) -> Value {
        let mut users: Vec<&super::User> = self.users.values().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        let groups: BTreeSet<&str> = users
            .iter()
            .flat_map(|u| u.groups.iter().map(String::as_str))
            .collect();
        let mut clients: Vec<&super::Client> = self.keycloak_clients().collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        json!({
            "realm": self.name,
            "enabled": true,
            "accessTokenLifespan": self.access_token_lifespan.as_secs(),
            "groups": groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
            "users": users.iter().map(|u| keycloak_user(u)).collect::<Vec<_>>(),
            "clients": clients
                .iter()
                .map(|c| keycloak_client(c))
                .collect::<Vec<_>>(),
        })
    }

    /// The clients Keycloak can hold as they are: with a secret, or public.
    fn keycloak_clients(&self) -> impl Iterator<Item = &super::Client> {
        self.clients
            .values()
            .filter(|c| matches!(c.credential, Credential::Secret(_) | Credential::Public))
    }

    /// (client id, the scopes to create and attach to it as optional client scopes): the
    /// realm's scopes that Keycloak does not have built in.
    pub fn keycloak_client_scopes(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = self
            .keycloak_clients()
            .map(|c| {
                let own = c
                    .scopes
                    .iter()
                    .filter(|s| !is_built_in_scope(s))
                    .cloned()
                    .collect();
                (c.client_id.clone(), own)
            })
            .filter(|(_, s): &(String, Vec<String>)| !s.is_empty())
            .collect();
        out.sort();
        out
    }
}

fn keycloak_user(u: &super::User) -> Value {
    let (first, last) = match u.name.as_deref().map(|n| n.split_once(' ')) {
        Some(Some((f, l))) => (f.to_string(), l.to_string()),
        Some(None) => (u.name.clone().unwrap_or_default(), String::new()),
        None => (String::new(), String::new()),
    };
    json!({
        "id": u.id.to_string(),
        "username": u.username,
        "enabled": true,
        "email": u.email,
        "emailVerified": u.email.is_some(),
        "firstName": first,
        "lastName": last,
        "credentials": [{"type": "password", "value": u.password, "temporary": false}],
        "groups": u.groups.iter().map(|g| format!("/{g}")).collect::<Vec<_>>(),
    })
}

/// An `oidc-audience-mapper` named `name` adding `audience` to access tokens.
fn audience_mapper(name: &str, audience: &str) -> Value {
    json!({
        "name": name,
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {
            "included.custom.audience": audience,
            "access.token.claim": "true",
            "introspection.token.claim": "true",
            "id.token.claim": "false",
        },
    })
}

fn keycloak_client(c: &super::Client) -> Value {
    let audiences: BTreeSet<&str> = c
        .audiences
        .iter()
        .chain(&c.exchange_audiences)
        .map(String::as_str)
        .collect();
    let mut mappers: Vec<Value> = audiences
        .iter()
        .enumerate()
        .map(|(i, aud)| audience_mapper(&format!("audience-{i}"), aud))
        .collect();
    mappers.push(json!({
        "name": "groups",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-group-membership-mapper",
        "config": {
            "claim.name": "groups",
            "full.path": "false",
            "access.token.claim": "true",
            "introspection.token.claim": "true",
            "id.token.claim": "true",
            "userinfo.token.claim": "true",
        },
    }));
    let mut client = json!({
        "clientId": c.client_id,
        "name": c.name,
        "enabled": true,
        "protocol": "openid-connect",
        "publicClient": c.is_public(),
        "standardFlowEnabled": false,
        "implicitFlowEnabled": false,
        "serviceAccountsEnabled": c.service_account.is_some(),
        "directAccessGrantsEnabled": c.direct_access_grants,
        "attributes": {
            "standard.token.exchange.enabled": c.standard_token_exchange.to_string(),
        },
        "protocolMappers": mappers,
    });
    if let Credential::Secret(secret) = &c.credential {
        client["clientAuthenticatorType"] = json!("client-secret");
        client["secret"] = json!(secret);
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = r#"
realm: demo
users:
  - {username: alice, id: 835414c6-012e-4647-8369-a9f46e3b9cad, name: Alice Smith, password: a, groups: [engineering, finance]}
clients:
  - client_id: agent
    secret: s
    service_account: true
    direct_access_grants: true
    standard_token_exchange: true
    audiences: [agent]
    exchange_audiences: [docs]
    scopes: [openid, profile, documents.read]
  - client_id: docs
    secret: d
"#;

    #[test]
    fn the_realm_becomes_keycloaks_representation() {
        let realm = Realm::from_yaml_str(REALM).unwrap();
        let r = realm.keycloak_representation();
        assert_eq!(r["realm"], "demo");
        assert_eq!(
            r["groups"],
            json!([{"name": "engineering"}, {"name": "finance"}])
        );
        let alice = &r["users"][0];
        assert_eq!(alice["id"], "835414c6-012e-4647-8369-a9f46e3b9cad");
        assert_eq!(alice["groups"], json!(["/engineering", "/finance"]));
        assert_eq!(
            (&alice["firstName"], &alice["lastName"]),
            (&json!("Alice"), &json!("Smith"))
        );
        assert_eq!(alice["credentials"][0]["temporary"], false);
        let agent = &r["clients"][0];
        assert_eq!(agent["clientId"], "agent");
        assert_eq!(agent["secret"], "s");
        assert_eq!(
            agent["attributes"]["standard.token.exchange.enabled"],
            "true"
        );
        assert_eq!(agent["standardFlowEnabled"], false);
        let audiences: Vec<&Value> = agent["protocolMappers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["protocolMapper"] == "oidc-audience-mapper")
            .map(|m| &m["config"]["included.custom.audience"])
            .collect();
        assert_eq!(audiences, [&json!("agent"), &json!("docs")]);
        assert_eq!(r["clients"][1]["serviceAccountsEnabled"], false);
        assert!(
            r.get("clientScopes").is_none(),
            "would replace the built-in scopes"
        );
        assert_eq!(
            realm.keycloak_client_scopes(),
            [("agent".to_string(), vec!["documents.read".to_string()])]
        );
    }
}
