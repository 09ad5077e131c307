//! The realm file: users and clients of the embedded token service, in YAML.
//!
//! The raw serde types (`RawRealm`, `RawUser`, `RawClient`, all `deny_unknown_fields`) are
//! kept apart from the validated [`Realm`]; `validate` turns one into the other and every
//! refusal names the field, e.g. `clients[2].exchange_audiences[0]`.
//!
//! ```text
//! realm: actbridge
//! access_token_lifespan: 300s
//! users:
//!   - { username: alice, id: 5f0c6c8e-…, name: Alice Smith, email: alice@example.com,
//!       password: alice123, groups: [engineering, finance] }
//! clients:
//!   - client_id: spiffe://demo.example.com/agent/reviewer-ops
//!     name: reviewer-ops
//!     secret: reviewer-ops-secret
//!     service_account: true
//!     direct_access_grants: true
//!     standard_token_exchange: true
//!     audiences: [spiffe://demo.example.com/agent/reviewer-ops]
//!     exchange_audiences: [spiffe://demo.example.com/service/document-service]
//!     scopes: [openid, profile, email, documents.read]
//!   - client_id: spiffe://demo.example.com/agent/summarizer-tech
//!     jwt_svid: true                  # authenticates with a JWT-SVID, no secret
//!     …
//! spiffe:                             # needed by `jwt_svid` clients
//!   trust_domain: demo.example.com
//!   jwt_bundle: /run/spire/bundle/jwt.jwks   # or an http(s) URL serving the JWKS
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use super::error::StsError;
use super::jwt_svid::JwtBundle;
use super::keys::ClientKey;

mod keycloak;
mod validate;

#[cfg(test)]
pub(crate) use validate::derived_service_account_id;

/// The realm file as written: YAML, unknown keys refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRealm {
    /// Realm name; the issuer is `{public_url}/realms/{realm}`. Letters, digits, `.`, `_`, `-`.
    realm: String,
    /// Lifetime of every access token, humantime (`300s`, `5m`). Default 300 s, as Keycloak.
    #[serde(default = "default_lifespan", with = "humantime_serde")]
    access_token_lifespan: Duration,
    /// The people who can log in with the `password` grant.
    #[serde(default)]
    users: Vec<RawUser>,
    /// The OAuth clients (agents, services).
    #[serde(default)]
    clients: Vec<RawClient>,
    /// The SPIFFE trust domain whose JWT-SVIDs authenticate `jwt_svid` clients.
    #[serde(default)]
    spiffe: Option<RawSpiffe>,
    /// Scopes that add an audience (Keycloak: a client scope with an Audience mapper). A
    /// client that lists one in its `scopes` may ask for it in a token exchange: the
    /// audience is then available to that exchange (as if in `exchange_audiences`) and,
    /// without an `audience` parameter, the token names it.
    #[serde(default)]
    audience_scopes: Vec<RawAudienceScope>,
}

/// `audience_scopes[]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudienceScope {
    /// The scope's name, as a client lists it in `scopes` and asks for it.
    name: String,
    /// The client id it adds to `aud`; a client of the realm.
    audience: String,
}

/// `spiffe`: where the trust domain's JWT-SVID signing keys come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpiffe {
    /// The trust domain, e.g. `demo.example.com`; `jwt_svid` clients' ids must be in it.
    trust_domain: String,
    /// The trust domain's JWT bundle: a JWKS file path (read at start and again when a
    /// `kid` is unknown), an http(s) URL serving the JWKS (SPIRE's bundle endpoint or its
    /// OIDC discovery provider's `/keys`), or a SPIFFE Workload API endpoint
    /// (`unix:///…`, `tcp://…`: its `FetchJWTBundles`).
    jwt_bundle: String,
}

fn default_lifespan() -> Duration {
    Duration::from_secs(300)
}

/// One user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    /// Login name; travels as `preferred_username`. Case-insensitive, stored lower-case (as
    /// Keycloak does).
    username: String,
    /// Stable UUID; travels as `sub`.
    id: Uuid,
    /// Display name; travels as `name`.
    #[serde(default)]
    name: Option<String>,
    /// E-mail address; travels as `email`.
    #[serde(default)]
    email: Option<String>,
    /// Demo password for the `password` grant (compared in constant time).
    password: String,
    /// Department names; travel as `groups`. A leading `/` (Keycloak full path) is stripped.
    #[serde(default)]
    groups: Vec<String>,
}

/// One client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    /// The OAuth `client_id` (for agents: their SPIFFE ID).
    client_id: String,
    /// Human name (Keycloak's client name). Defaults to `client_id`. The service account's
    /// username is `service-account-<client_id>`, lower-cased, as in Keycloak.
    #[serde(default)]
    name: Option<String>,
    /// A public client has no credentials and may only use the `password` grant.
    #[serde(default)]
    public: bool,
    /// Client secret (`client_secret_post` / `client_secret_basic`). Confidential clients have
    /// exactly one of `secret` and `public_key_pem`.
    #[serde(default)]
    secret: Option<String>,
    /// PEM public key for `private_key_jwt` (RSA → RS256/PS256, EC P-256 → ES256, Ed25519 →
    /// EdDSA).
    #[serde(default)]
    public_key_pem: Option<String>,
    /// Authenticates with a SPIFFE JWT-SVID as the client assertion (`client_id` = its
    /// SPIFFE ID, in the realm's `spiffe.trust_domain`). Exclusive with `secret`,
    /// `public_key_pem` and `public`.
    #[serde(default)]
    jwt_svid: bool,
    /// Enables the `client_credentials` grant (Keycloak "service accounts roles").
    #[serde(default)]
    service_account: bool,
    /// The service account's `sub`. Default: derived from `client_id` (stable UUIDv8).
    #[serde(default)]
    service_account_id: Option<Uuid>,
    /// Enables the `password` grant (Keycloak "direct access grants").
    #[serde(default)]
    direct_access_grants: bool,
    /// Enables standard token exchange V2 (Keycloak 26.2+) for this client as requester.
    #[serde(default)]
    standard_token_exchange: bool,
    /// `aud` values put into tokens issued to this client by `password` and
    /// `client_credentials` (Keycloak's audience mappers).
    #[serde(default)]
    audiences: Vec<String>,
    /// Client ids this client may name in a token exchange's `audience` parameter.
    #[serde(default)]
    exchange_audiences: Vec<String>,
    /// Scopes this client may hold; also its default scopes when none are requested.
    #[serde(default)]
    scopes: Vec<String>,
    /// Makes this client a tool that accepts only single-action capability tokens: an
    /// exchange whose audience is this client must name it alone and request exactly one
    /// scope (the action), and the token lives this long (humantime, at most the realm's
    /// `access_token_lifespan`) with its own `jti`. Like Keycloak's per-client "Access
    /// Token Lifespan".
    #[serde(default, with = "humantime_serde")]
    capability_token_lifespan: Option<Duration>,
    /// With `capability_token_lifespan`: only tokens holding one of these scopes are
    /// capability tokens (that one scope alone, that short life); an exchange for this
    /// audience without any of them is an ordinary token. Empty (the default): every
    /// token for this client is a capability token. An MCP server's tool scopes
    /// (`mcp:read_document`) beside its general `mcp` scope, say.
    #[serde(default)]
    capability_scopes: Vec<String>,
    /// Client ids that may act for the users who log in through this client: their
    /// tokens carry `may_act` (RFC 8693 §4.4) listing them, and an exchange of such a
    /// token with an `actor_token` of any other client is refused.
    #[serde(default)]
    may_act: Vec<String>,
}

/// A parsed and validated realm file. Build with [`Realm::from_yaml_file`] or
/// [`Realm::from_yaml_str`]; hand it to [`super::TokenService::new`].
pub struct Realm {
    pub(crate) name: String,
    pub(crate) access_token_lifespan: Duration,
    /// Keyed by lower-case username.
    pub(crate) users: HashMap<String, User>,
    /// Keyed by `client_id`.
    pub(crate) clients: HashMap<String, Client>,
    /// The trust domain's JWT bundle, for `jwt_svid` clients.
    pub(crate) jwt_bundle: Option<JwtBundle>,
    /// Audience scopes: name → the audience it adds.
    pub(crate) audience_scopes: HashMap<String, String>,
}

/// A validated user.
pub(crate) struct User {
    pub(crate) username: String,
    pub(crate) id: Uuid,
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) password: String,
    pub(crate) groups: Vec<String>,
}

/// How a client proves who it is.
#[derive(Debug)]
pub(crate) enum Credential {
    /// No credential: a public client.
    Public,
    /// A shared secret.
    Secret(String),
    /// A registered public key (`private_key_jwt`).
    Key(ClientKey),
    /// A SPIFFE JWT-SVID of the realm's trust domain, `sub` = the client id.
    JwtSvid,
}

/// A validated client.
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) credential: Credential,
    /// `Some(sub)` when the service account is enabled.
    pub(crate) service_account: Option<Uuid>,
    pub(crate) direct_access_grants: bool,
    pub(crate) standard_token_exchange: bool,
    pub(crate) audiences: Vec<String>,
    pub(crate) exchange_audiences: Vec<String>,
    pub(crate) scopes: Vec<String>,
    /// Set for a tool client: tokens for it are single-action and live this long.
    pub(crate) capability_token_lifespan: Option<Duration>,
    /// Scopes that make a token for this tool a capability token (empty: all do).
    pub(crate) capability_scopes: Vec<String>,
    /// Actors written into `may_act` of user tokens issued to this client.
    pub(crate) may_act: Vec<String>,
}

impl Client {
    /// Whether this is a public client.
    pub(crate) fn is_public(&self) -> bool {
        matches!(self.credential, Credential::Public)
    }
}

impl Realm {
    /// Reads and validates a realm file.
    pub fn from_yaml_file(path: &Path) -> Result<Realm, StsError> {
        let text = std::fs::read_to_string(path).map_err(|source| StsError::ReadRealm {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text)
    }

    /// Parses and validates realm YAML.
    pub fn from_yaml_str(s: &str) -> Result<Realm, StsError> {
        let raw: RawRealm = serde_yaml_ng::from_str(s).map_err(StsError::ParseRealm)?;
        validate::validate(raw)
    }

    /// The user with this username (case-insensitive).
    pub(crate) fn user(&self, username: &str) -> Option<&User> {
        self.users.get(&username.to_lowercase())
    }

    /// The client with this `client_id`.
    pub(crate) fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.get(client_id)
    }

    /// The audience the scope `name` adds, if it is an audience scope.
    pub(crate) fn audience_of_scope(&self, name: &str) -> Option<&str> {
        self.audience_scopes.get(name).map(String::as_str)
    }

    /// The trust domain's JWT bundle, if the realm has a `spiffe` section.
    pub(crate) fn jwt_bundle(&self) -> Option<&JwtBundle> {
        self.jwt_bundle.as_ref()
    }
}

impl std::fmt::Debug for Realm {
    /// Names and counts only: never passwords or secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut clients: Vec<&str> = self.clients.keys().map(String::as_str).collect();
        clients.sort_unstable();
        f.debug_struct("Realm")
            .field("name", &self.name)
            .field("access_token_lifespan", &self.access_token_lifespan)
            .field("users", &self.users.len())
            .field("clients", &clients)
            .finish()
    }
}
