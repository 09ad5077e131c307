//! Raw realm file → validated [`Realm`]; each refusal names the field.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Client, Credential, RawAudienceScope, RawClient, RawRealm, RawUser, Realm, User};
use crate::error::StsError;
use crate::jwt_svid::JwtBundle;
use crate::keys::ClientKey;

/// Namespace mixed into the derived service-account UUIDs, so they never collide with
/// UUIDs derived the same way for another purpose.
const SERVICE_ACCOUNT_NAMESPACE: &[u8] = b"actbridge:sts:service-account:";

pub(super) fn validate(raw: RawRealm) -> Result<Realm, StsError> {
    let realm_ok = !raw.realm.is_empty()
        && raw
            .realm
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !realm_ok {
        return Err(StsError::realm(
            "realm",
            "must be a non-empty name of letters, digits, '.', '_' or '-' (it is a URL path segment)",
        ));
    }
    if raw.access_token_lifespan.as_secs() == 0 {
        return Err(StsError::realm(
            "access_token_lifespan",
            "must be at least 1s",
        ));
    }

    let mut ids = HashSet::new();
    let mut users = HashMap::new();
    for (i, u) in raw.users.into_iter().enumerate() {
        let user = user(i, u)?;
        if !ids.insert(user.id) {
            return Err(StsError::realm(format!("users[{i}].id"), "duplicate id"));
        }
        if users.contains_key(&user.username) {
            return Err(StsError::realm(
                format!("users[{i}].username"),
                "duplicate username",
            ));
        }
        users.insert(user.username.clone(), user);
    }

    let jwt_bundle = match &raw.spiffe {
        None => None,
        Some(s) => {
            let td = &s.trust_domain;
            let td_ok = !td.is_empty()
                && td.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
                });
            if !td_ok {
                return Err(StsError::realm(
                    "spiffe.trust_domain",
                    "must be a trust domain name (lower-case letters, digits, '.', '-', '_'), without spiffe://",
                ));
            }
            Some(
                JwtBundle::new(td, &s.jwt_bundle)
                    .map_err(|e| StsError::realm("spiffe.jwt_bundle", e))?,
            )
        }
    };
    let known: HashSet<String> = raw.clients.iter().map(|c| c.client_id.clone()).collect();
    let mut clients = HashMap::new();
    for (i, c) in raw.clients.into_iter().enumerate() {
        let client = client(
            i,
            c,
            &known,
            jwt_bundle.as_ref().map(JwtBundle::trust_domain),
        )?;
        if let Some(sa) = client.service_account
            && !ids.insert(sa)
        {
            return Err(StsError::realm(
                format!("clients[{i}].service_account_id"),
                "collides with a user id or another service account",
            ));
        }
        if clients.contains_key(&client.client_id) {
            return Err(StsError::realm(
                format!("clients[{i}].client_id"),
                "duplicate client_id",
            ));
        }
        clients.insert(client.client_id.clone(), client);
    }

    let audience_scopes = audience_scopes(raw.audience_scopes, &known)?;
    Ok(Realm {
        name: raw.realm,
        access_token_lifespan: raw.access_token_lifespan,
        users,
        clients,
        jwt_bundle,
        audience_scopes,
    })
}

/// `audience_scopes`: named once each, none a scope every realm has, each adding a client
/// of the realm.
fn audience_scopes(
    raw: Vec<RawAudienceScope>,
    clients: &HashSet<String>,
) -> Result<HashMap<String, String>, StsError> {
    let mut out = HashMap::new();
    for (i, s) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("audience_scopes[{i}].{f}");
        if s.name.is_empty()
            || s.name
                .chars()
                .any(|c| c.is_whitespace() || c == '"' || c == '\\')
        {
            return Err(StsError::realm(
                field("name"),
                "must be a scope name (no spaces, quotes or backslashes)",
            ));
        }
        if super::keycloak::is_built_in_scope(&s.name) {
            return Err(StsError::realm(
                field("name"),
                "is a scope every Keycloak realm has",
            ));
        }
        if !clients.contains(&s.audience) {
            return Err(StsError::realm(
                field("audience"),
                "is not a client of the realm",
            ));
        }
        if out.insert(s.name, s.audience).is_some() {
            return Err(StsError::realm(field("name"), "listed twice"));
        }
    }
    Ok(out)
}

fn user(i: usize, u: RawUser) -> Result<User, StsError> {
    let field = |f: &str| format!("users[{i}].{f}");
    if u.username.trim().is_empty() || u.username.chars().any(char::is_whitespace) {
        return Err(StsError::realm(
            field("username"),
            "must be non-empty, without whitespace",
        ));
    }
    if u.id.is_nil() {
        return Err(StsError::realm(field("id"), "must not be the nil UUID"));
    }
    if u.password.is_empty() {
        return Err(StsError::realm(field("password"), "must not be empty"));
    }
    let mut groups: Vec<String> = Vec::new();
    for (j, g) in u.groups.iter().enumerate() {
        let bare = g.strip_prefix('/').unwrap_or(g);
        if bare.is_empty() || bare.contains('/') {
            return Err(StsError::realm(
                field(&format!("groups[{j}]")),
                "must be a bare department name (a single leading '/' is accepted)",
            ));
        }
        if !groups.iter().any(|x| x == bare) {
            groups.push(bare.to_string());
        }
    }
    Ok(User {
        username: u.username.to_lowercase(),
        id: u.id,
        name: u.name,
        email: u.email,
        password: u.password,
        groups,
    })
}

/// One realm client, checked. Long by design: its fields in the order a realm file
/// lists them, each error naming the field.
fn client(
    i: usize,
    c: RawClient,
    known: &HashSet<String>,
    trust_domain: Option<&str>,
) -> Result<Client, StsError> {
    let field = |f: &str| format!("clients[{i}].{f}");
    if c.client_id.trim().is_empty() || c.client_id.chars().any(char::is_whitespace) {
        return Err(StsError::realm(
            field("client_id"),
            "must be non-empty, without whitespace",
        ));
    }
    let credential = match (c.public, c.secret, c.public_key_pem) {
        (public, secret, key) if c.jwt_svid => {
            let Some(td) = trust_domain else {
                return Err(StsError::realm(
                    field("jwt_svid"),
                    "needs the realm's spiffe section (trust_domain, jwt_bundle)",
                ));
            };
            if public || secret.is_some() || key.is_some() {
                return Err(StsError::realm(
                    field("jwt_svid"),
                    "a jwt_svid client has no secret or key and is not public",
                ));
            }
            let in_domain = c
                .client_id
                .strip_prefix(&format!("spiffe://{td}/"))
                .is_some_and(|p| !p.is_empty());
            if !in_domain {
                return Err(StsError::realm(
                    field("client_id"),
                    format!("a jwt_svid client's id is its SPIFFE ID in spiffe://{td}/"),
                ));
            }
            Credential::JwtSvid
        }
        (true, None, None) => Credential::Public,
        (true, Some(_), _) => {
            return Err(StsError::realm(
                field("secret"),
                "a public client has no secret",
            ));
        }
        (true, None, Some(_)) => {
            return Err(StsError::realm(
                field("public_key_pem"),
                "a public client has no key",
            ));
        }
        (false, Some(_), Some(_)) => {
            return Err(StsError::realm(
                field("public_key_pem"),
                "give either secret or public_key_pem, not both",
            ));
        }
        (false, None, None) => {
            return Err(StsError::realm(
                field("secret"),
                "a confidential client needs secret or public_key_pem (or set public: true)",
            ));
        }
        (false, Some(secret), None) if secret.is_empty() => {
            return Err(StsError::realm(field("secret"), "must not be empty"));
        }
        (false, Some(secret), None) => Credential::Secret(secret),
        (false, None, Some(pem)) => Credential::Key(
            ClientKey::from_pem(&pem)
                .map_err(|reason| StsError::realm(field("public_key_pem"), reason))?,
        ),
    };
    let public = matches!(credential, Credential::Public);
    if public && c.service_account {
        return Err(StsError::realm(
            field("service_account"),
            "a public client has no service account",
        ));
    }
    if public && c.standard_token_exchange {
        return Err(StsError::realm(
            field("standard_token_exchange"),
            "a public client may not exchange tokens",
        ));
    }
    let service_account = match (c.service_account, c.service_account_id) {
        (false, Some(_)) => {
            return Err(StsError::realm(
                field("service_account_id"),
                "set service_account: true too",
            ));
        }
        (false, None) => None,
        (true, Some(id)) if id.is_nil() => {
            return Err(StsError::realm(
                field("service_account_id"),
                "must not be the nil UUID",
            ));
        }
        (true, Some(id)) => Some(id),
        (true, None) => Some(derived_service_account_id(&c.client_id)),
    };
    for (j, a) in c.audiences.iter().enumerate() {
        if a.trim().is_empty() {
            return Err(StsError::realm(
                field(&format!("audiences[{j}]")),
                "must not be empty",
            ));
        }
    }
    for (j, a) in c.exchange_audiences.iter().enumerate() {
        if !known.contains(a) {
            return Err(StsError::realm(
                field(&format!("exchange_audiences[{j}]")),
                format!("{a:?} is not a client_id of this realm"),
            ));
        }
    }
    for (j, s) in c.scopes.iter().enumerate() {
        if s.is_empty()
            || s.chars()
                .any(|ch| ch.is_whitespace() || ch == '"' || ch == '\\')
        {
            return Err(StsError::realm(
                field(&format!("scopes[{j}]")),
                "must be a non-empty scope token (no whitespace, quote or backslash)",
            ));
        }
    }
    if !c.capability_scopes.is_empty() && c.capability_token_lifespan.is_none() {
        return Err(StsError::realm(
            field("capability_scopes"),
            "only with `capability_token_lifespan`",
        ));
    }
    if let Some(s) = c.capability_scopes.iter().find(|s| !c.scopes.contains(s)) {
        return Err(StsError::realm(
            field("capability_scopes"),
            format!("`{s}` is not one of the client's `scopes`"),
        ));
    }
    Ok(Client {
        name: c.name.unwrap_or_else(|| c.client_id.clone()),
        client_id: c.client_id,
        credential,
        service_account,
        direct_access_grants: c.direct_access_grants,
        standard_token_exchange: c.standard_token_exchange,
        audiences: c.audiences,
        exchange_audiences: c.exchange_audiences,
        scopes: c.scopes,
        capability_token_lifespan: c.capability_token_lifespan,
        capability_scopes: c.capability_scopes,
        may_act: c.may_act,
    })
}

/// A stable service-account UUID for a client: UUIDv8 (RFC 9562 "custom") over the first 16
/// bytes of SHA-256(namespace ‖ client_id). Same client id, same `sub`, on every start.
pub(crate) fn derived_service_account_id(client_id: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(SERVICE_ACCOUNT_NAMESPACE)
        .chain_update(client_id)
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
