//! Every way the token endpoint says no, mapped once to Keycloak's status, `error` code and
//! `error_description`.
//!
//! Matched against the keycloak/keycloak sources (main branch, 2025–2026):
//! - `protocol/oidc/endpoints/TokenEndpoint.java` (`checkGrantType`, `checkParameterDuplicated`)
//! - `authentication/AuthenticationProcessor.java` (`handleClientAuthException`)
//! - `authentication/authenticators/client/ClientIdAndSecretAuthenticator.java`
//! - `authentication/authenticators/client/{AbstractJWTClientValidator,AbstractBaseJWTValidator,
//!   JWTClientAuthenticator}.java` (private_key_jwt)
//! - `protocol/oidc/grants/{ResourceOwnerPasswordCredentialsGrantType,ClientCredentialsGrantType,
//!   OAuth2GrantTypeBase}.java` and the direct-grant password authenticator
//! - `protocol/oidc/tokenexchange/{StandardTokenExchangeProvider,AbstractTokenExchangeProvider,
//!   TokenExchangeDelegationProvider}.java`
//! - `protocol/oidc/endpoints/{TokenIntrospectionEndpoint,TokenRevocationEndpoint}.java`
//!
//! Bodies never carry secrets or tokens: descriptions are fixed strings plus, at most, a
//! scope or audience the client itself sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Deepest `act` chain the service issues (RFC 8693 §4.1 nesting; Keycloak's delegation
/// branch caps at 8, this project at 10).
pub(crate) const MAX_ACT_DEPTH: usize = 10;

/// A refusal of a token request.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// Unknown realm in the path. Keycloak: 404 `{"error":"Realm does not exist"}`.
    #[error("realm does not exist")]
    RealmNotFound,
    /// The test switch [`super::TokenService::set_unavailable`] is on.
    #[error("token service unavailable")]
    Unavailable,
    /// TokenEndpoint.checkGrantType: 400 invalid_request.
    #[error("missing grant_type")]
    MissingGrantType,
    /// TokenEndpoint.checkGrantType: 400 unsupported_grant_type.
    #[error("unsupported grant_type")]
    UnsupportedGrantType,
    /// TokenEndpoint.checkParameterDuplicated: 400 invalid_request.
    #[error("duplicated parameter")]
    DuplicatedParameter,
    /// ClientIdAndSecretAuthenticator: 400 invalid_client "Missing client_id parameter".
    #[error("missing client_id")]
    MissingClientId,
    /// AuthenticationProcessor.handleClientAuthException (CLIENT_NOT_FOUND, or no
    /// authenticator matched the client's registered method): 401 invalid_client.
    #[error("unknown client or wrong authentication method")]
    UnknownClient,
    /// ClientIdAndSecretAuthenticator (secret missing or wrong): 401 unauthorized_client.
    #[error("bad client secret")]
    BadClientSecret,
    /// private_key_jwt validators: 400 invalid_client with Keycloak's description.
    #[error("client assertion refused: {0}")]
    ClientAssertion(String),
    /// ResourceOwnerPasswordCredentialsGrantType: 400 unauthorized_client.
    #[error("direct access grants disabled")]
    DirectGrantsDisabled,
    /// Direct-grant password authenticator: 400 invalid_grant "Invalid user credentials"
    /// (Keycloak 26.7 answers 400, as the differential suite sees).
    #[error("invalid user credentials")]
    InvalidUserCredentials,
    /// OAuth2GrantTypeBase.getRequestedScopes / StandardTokenExchangeProvider.getRequestedScope:
    /// 400 invalid_scope "Invalid scopes: <scope>".
    #[error("invalid scopes")]
    InvalidScopes(String),
    /// ClientCredentialsGrantType: 401 unauthorized_client.
    #[error("public client asked for a service account")]
    PublicClientServiceAccount,
    /// ClientCredentialsGrantType: 401 unauthorized_client.
    #[error("service account disabled")]
    ServiceAccountDisabled,
    /// StandardTokenExchangeProvider.supports refused (standard exchange off, subject token
    /// missing or not an access token, unsupported parameters): 400 invalid_request + reason.
    #[error("token exchange not supported: {0}")]
    ExchangeUnsupported(&'static str),
    /// StandardTokenExchangeProvider.processSubjectToken: 400 invalid_request "Invalid token".
    #[error("invalid subject token")]
    InvalidSubjectToken,
    /// TokenExchangeDelegationProvider: 400 invalid_request "Invalid actor token type".
    #[error("invalid actor token type")]
    InvalidActorTokenType,
    /// TokenExchangeDelegationProvider: 400 invalid_request "Invalid actor token".
    #[error("invalid actor token")]
    InvalidActorToken,
    /// TokenExchangeDelegationProvider (chained delegation): 400 invalid_request.
    #[error("actor token not issued to the requesting client")]
    ActorNotOfClient,
    /// TokenExchangeDelegationProvider: 400 invalid_request.
    #[error("actor and subject are the same")]
    ActorIsSubject,
    /// TokenExchangeDelegationProvider (chain depth): 400 invalid_request.
    #[error("delegation chain too deep")]
    ChainTooDeep(usize),
    /// A delegated subject token exchanged without an actor token would drop or misstate the
    /// chain; Keycloak's standard exchange refuses delegation subject tokens. 400
    /// invalid_request.
    #[error("delegated subject token without actor token")]
    DelegatedWithoutActor,
    /// StandardTokenExchangeProvider.getRequestedTokenType: 400 invalid_request.
    #[error("requested_token_type unsupported")]
    RequestedTokenTypeUnsupported,
    /// AbstractTokenExchangeProvider.getTargetAudienceClients: 400 invalid_client.
    #[error("audience not found")]
    AudienceNotFound,
    /// StandardTokenExchangeProvider.validateAudience: 400 invalid_client.
    #[error("public client may not exchange")]
    PublicClientExchange,
    /// AbstractTokenExchangeProvider.forbiddenIfClientIsNotWithinTokenAudience: 403
    /// access_denied.
    #[error("client not within the token audience")]
    NotWithinAudience,
    /// StandardTokenExchangeProvider.checkRequestedAudiences: 400 invalid_request.
    #[error("requested audience not available")]
    AudienceNotAvailable(String),
    /// The subject token's `may_act` (RFC 8693 §4.4) does not name the actor: 403
    /// access_denied.
    #[error("actor not permitted by may_act")]
    ActorNotPermitted,
    /// A capability token (audience = a tool client) must name that one audience and
    /// exactly one scope: 400 invalid_request.
    #[error("capability token request not for one audience and one scope")]
    CapabilityShape,
    /// TokenIntrospectionEndpoint.authorizeClient: any client authentication failure is
    /// 401 invalid_request "Authentication failed." (not the token endpoint's answers).
    #[error("introspection client authentication failed")]
    IntrospectionAuthFailed,
    /// TokenIntrospectionEndpoint.authorizeClient: a public client, 403 invalid_request.
    #[error("public client may not introspect")]
    IntrospectionClientNotAllowed,
    /// Introspection or revocation without `token`: 400 invalid_request with the
    /// endpoint's description ("Token not provided." / "Token not provided").
    #[error("token not provided")]
    TokenNotProvided(&'static str),
    /// TokenIntrospectionEndpoint: a `token_type_hint` with no provider, 400
    /// invalid_request.
    #[error("unsupported token_type_hint")]
    UnsupportedTokenTypeHint,
    /// TokenRevocationEndpoint.checkToken: a token that does not verify. Keycloak answers
    /// it with status **200** and `{"error":"invalid_token"}` (RFC 7009 §2.2: an invalid
    /// token is no error).
    #[error("revocation of an invalid token")]
    RevokeInvalidToken,
    /// TokenRevocationEndpoint.checkIssuedFor: the token's `azp` is another client, 400
    /// invalid_request.
    #[error("token issued to another client")]
    UnmatchingClients,
    /// The bounded set of revoked tokens is full of live entries: 503
    /// temporarily_unavailable (this service's bound; Keycloak has none).
    #[error("revoked-token set full")]
    RevocationsFull,
    /// Signing failed (should not happen with a validated key): 500 server_error.
    #[error("signing failed")]
    Internal,
}

impl Refusal {
    /// HTTP status, OAuth `error` and `error_description` — the one exhaustive mapping.
    /// Long by design: one arm per refusal, read as one table against Keycloak's answers.
    fn parts(&self) -> (StatusCode, &'static str, String) {
        use StatusCode as S;
        const BAD_CLIENT: &str = "Invalid client or Invalid client credentials";
        let (status, code, description): (StatusCode, &'static str, String) = match self {
            Refusal::RealmNotFound => (
                S::NOT_FOUND,
                "Realm does not exist",
                "For more on this error consult the server log at the debug level.".into(),
            ),
            Refusal::Unavailable => (
                S::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The token service is temporarily unavailable".into(),
            ),
            Refusal::MissingGrantType => {
                (S::BAD_REQUEST, "invalid_request", "Missing form parameter: grant_type".into())
            }
            Refusal::UnsupportedGrantType => {
                (S::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type".into())
            }
            Refusal::DuplicatedParameter => {
                (S::BAD_REQUEST, "invalid_request", "duplicated parameter".into())
            }
            Refusal::MissingClientId => {
                (S::BAD_REQUEST, "invalid_client", "Missing client_id parameter".into())
            }
            Refusal::UnknownClient => (S::UNAUTHORIZED, "invalid_client", BAD_CLIENT.into()),
            Refusal::BadClientSecret => (S::UNAUTHORIZED, "unauthorized_client", BAD_CLIENT.into()),
            Refusal::ClientAssertion(why) => (S::BAD_REQUEST, "invalid_client", why.clone()),
            Refusal::DirectGrantsDisabled => (
                S::BAD_REQUEST,
                "unauthorized_client",
                "Client not allowed for direct access grants".into(),
            ),
            Refusal::InvalidUserCredentials => {
                (S::BAD_REQUEST, "invalid_grant", "Invalid user credentials".into())
            }
            Refusal::InvalidScopes(scope) => {
                (S::BAD_REQUEST, "invalid_scope", format!("Invalid scopes: {scope}"))
            }
            Refusal::PublicClientServiceAccount => (
                S::UNAUTHORIZED,
                "unauthorized_client",
                "Public client not allowed to retrieve service account".into(),
            ),
            Refusal::ServiceAccountDisabled => (
                S::UNAUTHORIZED,
                "unauthorized_client",
                "Client not enabled to retrieve service account".into(),
            ),
            Refusal::ExchangeUnsupported(why) => (S::BAD_REQUEST, "invalid_request", (*why).into()),
            Refusal::InvalidSubjectToken => (S::BAD_REQUEST, "invalid_request", "Invalid token".into()),
            Refusal::InvalidActorTokenType => {
                (S::BAD_REQUEST, "invalid_request", "Invalid actor token type".into())
            }
            Refusal::InvalidActorToken => {
                (S::BAD_REQUEST, "invalid_request", "Invalid actor token".into())
            }
            Refusal::ActorNotOfClient => (
                S::BAD_REQUEST,
                "invalid_request",
                "Requesting client does not match the client the actor_token was issued for".into(),
            ),
            Refusal::ActorIsSubject => (
                S::BAD_REQUEST,
                "invalid_request",
                "Actor and subject user cannot be the same user".into(),
            ),
            Refusal::ChainTooDeep(depth) => (
                S::BAD_REQUEST,
                "invalid_request",
                format!("Delegation chain depth {depth} exceeds the maximum of {MAX_ACT_DEPTH}"),
            ),
            Refusal::DelegatedWithoutActor => (
                S::BAD_REQUEST,
                "invalid_request",
                "The subject_token carries an act claim, so it can only be exchanged with an actor_token"
                    .into(),
            ),
            Refusal::ActorNotPermitted => (
                S::FORBIDDEN,
                "access_denied",
                "The actor is not permitted by the subject token's may_act claim".into(),
            ),
            Refusal::CapabilityShape => (
                S::BAD_REQUEST,
                "invalid_request",
                "A capability token is issued for exactly one audience and one scope".into(),
            ),
            Refusal::RequestedTokenTypeUnsupported => {
                (S::BAD_REQUEST, "invalid_request", "requested_token_type unsupported".into())
            }
            Refusal::AudienceNotFound => (S::BAD_REQUEST, "invalid_client", "Audience not found".into()),
            Refusal::PublicClientExchange => (
                S::BAD_REQUEST,
                "invalid_client",
                "Public client is not allowed to exchange token".into(),
            ),
            Refusal::NotWithinAudience => (
                S::FORBIDDEN,
                "access_denied",
                "Client is not within the token audience".into(),
            ),
            Refusal::AudienceNotAvailable(missing) => (
                S::BAD_REQUEST,
                "invalid_request",
                format!("Requested audience not available: {missing}"),
            ),
            Refusal::IntrospectionAuthFailed => {
                (S::UNAUTHORIZED, "invalid_request", "Authentication failed.".into())
            }
            Refusal::IntrospectionClientNotAllowed => {
                (S::FORBIDDEN, "invalid_request", "Client not allowed.".into())
            }
            Refusal::TokenNotProvided(description) => {
                (S::BAD_REQUEST, "invalid_request", (*description).into())
            }
            Refusal::UnsupportedTokenTypeHint => {
                (S::BAD_REQUEST, "invalid_request", "Unsupported token type.".into())
            }
            Refusal::RevokeInvalidToken => (S::OK, "invalid_token", "Invalid token".into()),
            Refusal::UnmatchingClients => {
                (S::BAD_REQUEST, "invalid_request", "Unmatching clients".into())
            }
            Refusal::RevocationsFull => (
                S::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Too many revoked tokens are kept; retry later".into(),
            ),
            Refusal::Internal => (
                S::INTERNAL_SERVER_ERROR,
                "server_error",
                "For more on this error consult the server log.".into(),
            ),
        };
        (status, code, description)
    }

    /// The HTTP status of this refusal.
    pub(crate) fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The OAuth `error` code of this refusal.
    pub(crate) fn code(&self) -> &'static str {
        self.parts().1
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, description) = self.parts();
        let mut response = (
            status,
            Json(json!({ "error": code, "error_description": description })),
        )
            .into_response();
        no_store(&mut response);
        response
    }
}

/// RFC 6749 §5.1: token responses (and their errors) must not be cached.
pub(crate) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
