//! RFC 8693 token exchange with Keycloak's standard token exchange (V2, 26.2+) rules and
//! the delegation (`actor_token`) extension, checks in Keycloak's order:
//!
//! 1. `supports`: standard exchange enabled for the client; `subject_token` and
//!    `subject_token_type` = access token present; no `requested_subject`,
//!    `requested_issuer`, `subject_issuer`.
//! 2. the subject token verifies (signature, issuer, expiry) and was not revoked.
//! 3. with an `actor_token`: its type is access token, it verifies, it was issued to the
//!    requesting client, its subject is not the subject's, and the resulting `act` chain is at
//!    most [`MAX_ACT_DEPTH`] deep; when the subject token has `may_act` (RFC 8693 §4.4), it
//!    must name the actor. Without one, a subject token that already carries `act`
//!    is refused (the chain must not be dropped or misattributed) unless the requesting
//!    client is its newest actor: the agent that already acts goes on acting, and the
//!    chain is kept as it is.
//! 4. `requested_token_type` absent or access token.
//! 5. each `audience` is a client of the realm; the client is confidential and is the
//!    subject token's holder (`azp`) or within its `aud`.
//! 6. `scope` only narrows: each requested scope is in the subject token and allowed to the
//!    client — except an audience scope (`audience_scopes`) the client lists, which names
//!    an audience, not a permission (Keycloak grants it as any optional client scope).
//! 7. each `audience` is one the client may request (`exchange_audiences`), or the one a
//!    requested audience scope adds.
//!
//! 8. a tool audience (a client with `capability_token_lifespan`) gets a single-action
//!    capability token: that one audience, exactly one scope, its own short life.
//!
//! The new token keeps the subject's `sub`, `preferred_username`, `email`, `name`, `groups`;
//! gets `aud` = the requested audiences (when none, the client's `audiences` and those of the
//! granted audience scopes), `azp` = the
//! client, a new `jti`, `exp` never beyond the subject token's, and `act` = `{sub, client_id,
//! act: <subject's act>}` — newest actor outermost.

use serde_json::{Map, Value, json};

use super::{ACCESS_TOKEN_TYPE, sign};
use crate::claims::{Envelope, TokenResponse, act_depth, aud_contains, now, scope_list};
use crate::form::Form;
use crate::realm::Client;
use crate::refusal::{MAX_ACT_DEPTH, Refusal};
use crate::service::TokenService;
use crate::verify::verify_live;

/// Parameters of other token-exchange flavours, refused as by `StandardTokenExchangeProvider`.
const UNSUPPORTED_PARAMETERS: &[(&str, &str)] = &[
    (
        "requested_subject",
        "Parameter 'requested_subject' is not supported for standard token exchange",
    ),
    (
        "requested_issuer",
        "Parameter 'requested_issuer' is not supported for standard token exchange",
    ),
    (
        "subject_issuer",
        "Parameter 'subject_issuer' is not supported for standard token exchange",
    ),
];

/// Profile claims carried over from the subject token.
const KEPT_CLAIMS: &[&str] = &["preferred_username", "email", "name", "groups"];

pub(super) fn grant(
    svc: &TokenService,
    client: &Client,
    form: &Form,
) -> Result<TokenResponse, Refusal> {
    let issuer = svc.issuer();
    let subject = subject_token(svc, client, form)?;
    let subject_sub = subject
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let act = actor(svc, client, form, &subject, &subject_sub)?;

    if form
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(Refusal::RequestedTokenTypeUnsupported);
    }
    let requested = requested_audiences(svc, form)?;
    check_holder(client, &subject)?;
    let scope = narrowed_scope(svc, client, form, &subject)?;
    let scoped: Vec<&str> = scope
        .iter()
        .filter_map(|s| svc.realm().audience_of_scope(s))
        .collect();
    let missing: Vec<&str> = requested
        .iter()
        .filter(|a| !client.exchange_audiences.contains(a) && !scoped.contains(&a.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(Refusal::AudienceNotAvailable(missing.join(", ")));
    }

    let audiences = if requested.is_empty() {
        let mut own = client.audiences.clone();
        for a in scoped {
            if !own.iter().any(|x| x == a) {
                own.push(a.to_string());
            }
        }
        own
    } else {
        requested
    };
    let lifespan =
        capability_lifespan(svc, &audiences, &scope)?.unwrap_or(svc.realm().access_token_lifespan);
    let iat = now();
    let subject_exp = subject.get("exp").and_then(Value::as_u64).unwrap_or(iat);
    let exp = (iat + lifespan.as_secs()).min(subject_exp);
    let envelope = Envelope {
        issuer: &issuer,
        azp: &client.client_id,
        audiences: &audiences,
        iat,
        exp,
        scope: &scope,
    };
    let mut claims = envelope.claims(&subject_sub);
    for name in KEPT_CLAIMS {
        if let Some(v) = subject.get(*name) {
            claims.insert((*name).to_string(), v.clone());
        }
    }
    let chain_depth = act.as_ref().map_or(0, |a| act_depth(Some(a)).unwrap_or(0));
    if let Some(act) = act {
        claims.insert("act".into(), act);
    }
    let token = sign(svc, claims)?;
    tracing::info!(
        client_id = %client.client_id,
        audience = %audiences.join(" "),
        chain_depth,
        "token exchange issued"
    );
    let mut response = TokenResponse::new(token, iat, exp, &scope);
    response.issued_token_type = Some(ACCESS_TOKEN_TYPE);
    Ok(response)
}

/// A tool audience (`capability_token_lifespan` set) gets a single-action token: it must
/// be the only audience and exactly one scope must be granted. Returns its lifespan.
fn capability_lifespan(
    svc: &TokenService,
    audiences: &[String],
    scope: &[String],
) -> Result<Option<std::time::Duration>, Refusal> {
    let tool = audiences
        .iter()
        .filter_map(|a| svc.realm().client(a))
        .find(|c| c.capability_token_lifespan.is_some());
    let Some(tool) = tool else { return Ok(None) };
    let capability = tool.capability_scopes.is_empty()
        || scope.iter().any(|s| tool.capability_scopes.contains(s));
    match tool.capability_token_lifespan {
        Some(_) if !capability => Ok(None),
        Some(_) if audiences.len() != 1 || scope.len() != 1 => Err(Refusal::CapabilityShape),
        Some(life) => Ok(Some(life.min(svc.realm().access_token_lifespan))),
        None => Ok(None),
    }
}

/// Step 5a: every `audience` names a client of the realm (deduplicated, order kept).
fn requested_audiences(svc: &TokenService, form: &Form) -> Result<Vec<String>, Refusal> {
    let mut requested: Vec<String> = Vec::new();
    for a in form.all("audience") {
        if svc.realm().client(a).is_none() {
            return Err(Refusal::AudienceNotFound);
        }
        if !requested.iter().any(|r| r == a) {
            requested.push(a.to_string());
        }
    }
    Ok(requested)
}

/// Step 5b: a confidential client that holds the subject token (`azp`) or is in its `aud`.
fn check_holder(client: &Client, subject: &Map<String, Value>) -> Result<(), Refusal> {
    if client.is_public() {
        return Err(Refusal::PublicClientExchange);
    }
    let holder = subject.get("azp").and_then(Value::as_str);
    if holder != Some(client.client_id.as_str()) && !aud_contains(subject, &client.client_id) {
        tracing::info!(
            client_id = %client.client_id,
            "token exchange refused: client not within the token audience"
        );
        return Err(Refusal::NotWithinAudience);
    }
    Ok(())
}

/// Step 1 and 2: the request is a standard exchange and the subject token verifies.
fn subject_token(
    svc: &TokenService,
    client: &Client,
    form: &Form,
) -> Result<Map<String, Value>, Refusal> {
    for (param, reason) in UNSUPPORTED_PARAMETERS {
        if form.get(param).is_some() {
            return Err(Refusal::ExchangeUnsupported(reason));
        }
    }
    if !client.standard_token_exchange {
        return Err(Refusal::ExchangeUnsupported(
            "Standard token exchange is not enabled for the requested client",
        ));
    }
    let token = form
        .get("subject_token")
        .ok_or(Refusal::ExchangeUnsupported(
            "Parameter 'subject_token' required for standard token exchange",
        ))?;
    let token_type = form
        .get("subject_token_type")
        .ok_or(Refusal::ExchangeUnsupported(
            "Parameter 'subject_token_type' required for standard token exchange",
        ))?;
    if token_type != ACCESS_TOKEN_TYPE {
        return Err(Refusal::ExchangeUnsupported(
            "Parameter 'subject_token' supports access tokens only",
        ));
    }
    let subject = verify_live(svc, token).ok_or(Refusal::InvalidSubjectToken)?;
    act_depth(subject.get("act")).ok_or(Refusal::InvalidSubjectToken)?;
    Ok(subject)
}

/// Step 3: the new `act` claim, if an actor token was sent.
fn actor(
    svc: &TokenService,
    client: &Client,
    form: &Form,
    subject: &Map<String, Value>,
    subject_sub: &str,
) -> Result<Option<Value>, Refusal> {
    let prior = subject.get("act");
    let prior_depth = token_act_depth(subject);
    let Some(actor_token) = form.get("actor_token") else {
        // RFC 8693 §4.4: `may_act` names who may act for the subject. Without an actor
        // token nobody is named, and the exchange would be impersonation instead of the
        // delegation `may_act` allows (Keycloak fixed the same bypass,
        // keycloak/keycloak#52691): refused.
        if subject.contains_key("may_act") {
            tracing::info!(client_id = %client.client_id, "token exchange refused: may_act and no actor token");
            return Err(Refusal::ActorNotPermitted);
        }
        let newest = prior
            .and_then(|a| a.get("client_id"))
            .and_then(Value::as_str);
        return match (prior, newest) {
            (None, _) => Ok(None),
            (Some(chain), Some(id)) if id == client.client_id => Ok(Some(chain.clone())),
            (Some(_), _) => Err(Refusal::DelegatedWithoutActor),
        };
    };
    if form.get("actor_token_type") != Some(ACCESS_TOKEN_TYPE) {
        return Err(Refusal::InvalidActorTokenType);
    }
    let actor = verify_live(svc, actor_token).ok_or(Refusal::InvalidActorToken)?;
    let actor_client = actor
        .get("azp")
        .or_else(|| actor.get("client_id"))
        .and_then(Value::as_str);
    if actor_client != Some(client.client_id.as_str()) {
        tracing::info!(client_id = %client.client_id, "token exchange refused: actor token of another client");
        return Err(Refusal::ActorNotOfClient);
    }
    let actor_sub = actor.get("sub").and_then(Value::as_str).unwrap_or_default();
    if actor_sub == subject_sub {
        return Err(Refusal::ActorIsSubject);
    }
    if let Some(may_act) = subject.get("may_act")
        && !may_act_permits(may_act, &client.client_id, actor_sub)
    {
        tracing::info!(client_id = %client.client_id, "token exchange refused: actor not in may_act");
        return Err(Refusal::ActorNotPermitted);
    }
    let depth = prior_depth + 1;
    if depth > MAX_ACT_DEPTH {
        tracing::info!(client_id = %client.client_id, depth, "token exchange refused: delegation chain too deep");
        return Err(Refusal::ChainTooDeep(depth));
    }
    let mut act = json!({ "sub": actor_sub, "client_id": client.client_id });
    if let Some(prior) = prior {
        act["act"] = prior.clone();
    }
    Ok(Some(act))
}

/// RFC 8693 §4.4: `may_act` names who may act for the subject, as an object (or, as this
/// service writes several, an array of objects). An entry permits the actor when every
/// member it has (`client_id`, `sub`) matches; anything malformed permits no one.
fn may_act_permits(may_act: &Value, client_id: &str, actor_sub: &str) -> bool {
    let entry_permits = |e: &Value| {
        let Some(obj) = e.as_object() else {
            return false;
        };
        let matches = |key: &str, want: &str| obj.get(key).is_none_or(|v| v.as_str() == Some(want));
        (obj.contains_key("client_id") || obj.contains_key("sub"))
            && matches("client_id", client_id)
            && matches("sub", actor_sub)
    };
    match may_act {
        Value::Array(entries) => entries.iter().any(entry_permits),
        one => entry_permits(one),
    }
}

/// Step 6: requested scopes must be allowed to the client and, but for an audience scope,
/// in the subject token; when none are requested, the subject's scopes the client may
/// hold.
fn narrowed_scope(
    svc: &TokenService,
    client: &Client,
    form: &Form,
    subject: &Map<String, Value>,
) -> Result<Vec<String>, Refusal> {
    let held = scope_list(
        subject
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    );
    match form.get("scope") {
        Some(scope) => {
            let requested = scope_list(scope);
            let held_or_audience =
                |s: &String| held.contains(s) || svc.realm().audience_of_scope(s).is_some();
            if requested
                .iter()
                .any(|s| !held_or_audience(s) || !client.scopes.contains(s))
            {
                tracing::info!(client_id = %client.client_id, "token exchange refused: scope widening");
                return Err(Refusal::InvalidScopes(scope.to_string()));
            }
            Ok(requested)
        }
        None => Ok(held
            .into_iter()
            .filter(|s| client.scopes.contains(s))
            .collect()),
    }
}

/// Depth of the subject's `act` chain (already checked well-formed).
fn token_act_depth(claims: &Map<String, Value>) -> usize {
    act_depth(claims.get("act")).unwrap_or(0)
}
