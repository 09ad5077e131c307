//! Outbound: match the destination to a route, then exchange the agent's token for one
//! meant for that destination, pass the request through, or refuse it.

use http::{HeaderName, HeaderValue, header::AUTHORIZATION};

use super::bearer::bearer_token;
use super::{Allowed, Mutations, Refusal, RequestFacts};
use crate::config::{OutboundConfig, RouteAction, RouteConfig};
use crate::exchange::Exchanger;
use crate::jwt::{AudienceProfile, Verifier};

pub(super) struct OutboundStage {
    cfg: OutboundConfig,
    exchanger: Exchanger,
}

impl OutboundStage {
    pub fn new(cfg: &OutboundConfig) -> Self {
        OutboundStage {
            cfg: cfg.clone(),
            exchanger: Exchanger::new(cfg),
        }
    }

    pub fn retry_after_secs(&self) -> u64 {
        self.cfg.retry_after.as_secs().max(1)
    }

    /// The first route whose host glob matches the authority.
    fn route(&self, authority: &str) -> Option<&RouteConfig> {
        self.cfg.routes.iter().find(|r| r.host.matches(authority))
    }

    pub async fn decide(
        &self,
        verifier: &Verifier,
        req: &RequestFacts,
    ) -> Result<Allowed, Refusal> {
        let (name, action) = match self.route(&req.authority) {
            Some(r) => (r.name.as_str(), &r.action),
            None => ("default", &self.cfg.default_action),
        };
        match action {
            RouteAction::Deny => Err(Refusal::RouteDenied(name.to_string())),
            RouteAction::Passthrough {
                forward_authorization,
            } => Ok(Allowed {
                mutations: Mutations {
                    set: Vec::new(),
                    remove: if *forward_authorization {
                        Vec::new()
                    } else {
                        vec![AUTHORIZATION]
                    },
                },
                route: name.to_string(),
                subject: None,
                fingerprint: None,
            }),
            RouteAction::Exchange(target) => {
                let token = bearer_token(req)?;
                let verified = verifier.verify(token, AudienceProfile::Outbound).await?;
                let issued = self
                    .exchanger
                    .exchange(token, verified.expires_at, target)
                    .await?;
                let value = HeaderValue::try_from(format!("Bearer {}", issued.access_token))
                    .map_err(|_| Refusal::UnforwardableToken)?;
                Ok(Allowed {
                    mutations: Mutations {
                        set: vec![(AUTHORIZATION, value)],
                        remove: vec![HeaderName::from_static("proxy-authorization")],
                    },
                    route: name.to_string(),
                    subject: verified.subject.clone(),
                    fingerprint: Some(verified.fingerprint.clone()),
                })
            }
        }
    }
}
