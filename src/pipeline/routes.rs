//! The outbound route table, resolved once at start: each route's backend is a handle,
//! and every route that scopes a credential holds the policy that scopes it. A route
//! naming a backend that was not built, or needing a policy that was not loaded, stops
//! the start ([`WiringError`]) instead of refusing each request it matches.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::authority::HostPattern;
use crate::config::{ExchangeTarget, OutboundConfig, RouteAction, RouteProtocol, TokenRules};
use crate::credentials::{Backend, Credentials};
use crate::policy::PolicyEngine;

/// A route the pipeline cannot be built with.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// A route names a credential backend that was not built.
    #[error("route `{route}` names credential `{credential}`, which was not loaded")]
    CredentialNotLoaded { route: String, credential: String },
    /// A route scopes a credential to the grant, and no policy was loaded.
    #[error("route `{route}` scopes a credential to the policy's grant, and no policy was loaded")]
    PolicyMissing { route: String },
}

/// One route, resolved.
pub(super) struct Route {
    pub name: String,
    pub host: HostPattern,
    /// The Envoy cluster its requests must leave by (`None`: the forward proxy).
    pub cluster: Option<String>,
    pub action: Action,
}

/// A backend as a route uses it: its configured name (for records) and the handle.
pub(super) struct Named {
    pub name: String,
    pub backend: Arc<Backend>,
}

/// What a route does, every name resolved.
pub(super) enum Action {
    /// Replace `authorization` with an exchanged token.
    Exchange {
        target: ExchangeTarget,
        rules: TokenRules,
        protocol: RouteProtocol,
    },
    /// Replace the agent's token with the backend's credential, scoped by `policy`.
    Credential {
        credential: Named,
        policy: Arc<PolicyEngine>,
        rules: TokenRules,
    },
    /// Answer `POST /credentials` with a credential of the service asked for.
    Vend {
        /// `target_service` → its backend.
        services: BTreeMap<String, Named>,
        policy: Arc<PolicyEngine>,
        rules: TokenRules,
    },
    /// Let the request through; remove `authorization` unless `forward_authorization`.
    Passthrough { forward_authorization: bool },
    /// Refuse.
    Deny,
}

/// Every route of `cfg`, then the default action (named `default`).
pub(super) fn resolve(
    cfg: &OutboundConfig,
    credentials: &Credentials,
    policy: Option<&Arc<PolicyEngine>>,
) -> Result<(Vec<Route>, Action), WiringError> {
    let routes = cfg
        .routes
        .iter()
        .map(|r| {
            Ok(Route {
                name: r.name.clone(),
                host: r.host.clone(),
                cluster: r.cluster.clone(),
                action: action(&r.name, &r.action, credentials, policy)?,
            })
        })
        .collect::<Result<Vec<_>, WiringError>>()?;
    let default = action(
        crate::envoy_routes::DEFAULT_ROUTE,
        &cfg.default_action,
        credentials,
        policy,
    )?;
    Ok((routes, default))
}

fn action(
    route: &str,
    action: &RouteAction,
    credentials: &Credentials,
    policy: Option<&Arc<PolicyEngine>>,
) -> Result<Action, WiringError> {
    let named = |credential: &str| {
        credentials
            .get(credential)
            .map(|backend| Named {
                name: credential.to_string(),
                backend: backend.clone(),
            })
            .ok_or_else(|| WiringError::CredentialNotLoaded {
                route: route.to_string(),
                credential: credential.to_string(),
            })
    };
    let policy = || {
        policy.cloned().ok_or_else(|| WiringError::PolicyMissing {
            route: route.to_string(),
        })
    };
    Ok(match action {
        RouteAction::Exchange {
            target,
            rules,
            protocol,
        } => Action::Exchange {
            target: target.clone(),
            rules: *rules,
            protocol: protocol.clone(),
        },
        RouteAction::Credential {
            credential, rules, ..
        } => Action::Credential {
            credential: named(credential)?,
            policy: policy()?,
            rules: *rules,
        },
        RouteAction::Vend { services, rules } => Action::Vend {
            services: services
                .iter()
                .map(|(service, credential)| Ok((service.clone(), named(credential)?)))
                .collect::<Result<_, WiringError>>()?,
            policy: policy()?,
            rules: *rules,
        },
        RouteAction::Passthrough {
            forward_authorization,
        } => Action::Passthrough {
            forward_authorization: *forward_authorization,
        },
        RouteAction::Deny => Action::Deny,
    })
}
