//! Inbound: verify the caller's token and hand the app the verified identity in headers
//! whose client-sent copies are removed first.

use http::HeaderValue;

use super::bearer::bearer_token;
use super::{Allowed, Mutations, Refusal, RequestFacts};
use crate::config::{InboundConfig, PathMatch};
use crate::jwt::{AudienceProfile, VerifiedToken, Verifier};

pub(super) struct InboundStage {
    cfg: InboundConfig,
}

impl InboundStage {
    pub fn new(cfg: &InboundConfig) -> Self {
        InboundStage { cfg: cfg.clone() }
    }

    pub async fn decide(
        &self,
        verifier: &Verifier,
        req: &RequestFacts,
    ) -> Result<Allowed, Refusal> {
        let h = &self.cfg.identity_headers;
        // Client copies of the identity headers never reach the app, bypassed or not.
        let remove = vec![h.subject.clone(), h.username.clone(), h.actors.clone()];
        let path = req.path_only();
        if self
            .cfg
            .bypass_paths
            .iter()
            .any(|p: &PathMatch| p.matches(path))
        {
            return Ok(Allowed {
                mutations: Mutations {
                    set: Vec::new(),
                    remove,
                },
                route: "bypass".into(),
                subject: None,
                fingerprint: None,
            });
        }
        let token = bearer_token(req)?;
        let verified = verifier.verify(token, AudienceProfile::Inbound).await?;
        let set = self.identity(&verified)?;
        Ok(Allowed {
            mutations: Mutations { set, remove },
            route: "inbound".into(),
            subject: verified.subject.clone(),
            fingerprint: Some(verified.fingerprint.clone()),
        })
    }

    fn identity(&self, t: &VerifiedToken) -> Result<Vec<(http::HeaderName, HeaderValue)>, Refusal> {
        let h = &self.cfg.identity_headers;
        let mut set = Vec::with_capacity(3);
        if let Some(sub) = &t.subject {
            set.push((h.subject.clone(), header_value(sub, "sub")?));
        }
        if let Some(name) = &t.username {
            set.push((
                h.username.clone(),
                header_value(name, "preferred_username")?,
            ));
        }
        let actors =
            serde_json::to_string(&t.actors).map_err(|_| Refusal::UnforwardableClaim("act"))?;
        set.push((h.actors.clone(), header_value(&actors, "act")?));
        Ok(set)
    }
}

/// A header value from a verified claim; control characters (CR, LF, NUL, …) refuse it.
fn header_value(v: &str, claim: &'static str) -> Result<HeaderValue, Refusal> {
    HeaderValue::from_str(v).map_err(|_| Refusal::UnforwardableClaim(claim))
}
