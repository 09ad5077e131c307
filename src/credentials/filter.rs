//! `filter`: for APIs with no scoped credentials (a chat API, say). actbridge holds the
//! one service token and injects it only into requests a rule allows for the grant:
//! the method and exact path must match a rule, and the value the rule names — a
//! top-level JSON body field or a query parameter, e.g. `channel` — must be one the
//! grant maps to. The upstream's answer passes unchanged. The agent never holds the
//! token.

use http::HeaderValue;
use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};

use super::{CredentialError, Grantee, HeaderChanges, HttpRequest, Scope};
use crate::config::{FilterConfig, FilterRule, ValueAt};

/// The `filter` backend.
pub struct Filter {
    cfg: FilterConfig,
}

impl Filter {
    pub(super) fn new(cfg: &FilterConfig) -> Filter {
        Filter { cfg: cfg.clone() }
    }

    /// The rule for this method and path, by index.
    fn rule_for(&self, req: &HttpRequest<'_>) -> Option<(usize, &FilterRule)> {
        let path = req.path.split(['?', '#']).next().unwrap_or("");
        self.cfg
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.method == req.method && r.path == path)
    }

    /// Refuses a request no rule covers; the policy sees the path's segments.
    pub(super) fn scope(&self, req: &HttpRequest<'_>) -> Result<Scope, CredentialError> {
        let Some((i, _)) = self.rule_for(req) else {
            let path = req.path.split(['?', '#']).next().unwrap_or("");
            return Err(CredentialError::RuleRefused(format!(
                "no rule allows {} {}",
                req.method,
                printable(path)
            )));
        };
        let action = super::action_of(req.method);
        let path = req.path.split(['?', '#']).next().unwrap_or("");
        Ok(Scope {
            action,
            resource: path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            object: i.to_string(),
        })
    }

    /// The body limit when the request's rule reads a body field.
    pub(super) fn body_limit(&self, req: &HttpRequest<'_>) -> Option<usize> {
        match self.rule_for(req) {
            Some((_, r)) if matches!(r.value_at, ValueAt::BodyField(_)) => {
                Some(self.cfg.max_body_bytes)
            }
            _ => None,
        }
    }

    pub(super) fn apply(
        &self,
        who: &Grantee<'_>,
        req: &HttpRequest<'_>,
        scope: &Scope,
        body: Option<&[u8]>,
    ) -> Result<HeaderChanges, CredentialError> {
        let (i, rule) = self
            .rule_for(req)
            .filter(|(i, _)| i.to_string() == scope.object)
            .ok_or_else(|| CredentialError::RuleRefused("no rule allows this request".into()))?;
        let name = format!("rule {} ({} {})", i + 1, rule.method, rule.path);
        let (field, value) = match &rule.value_at {
            ValueAt::Query(q) => {
                let query = req.path.split_once('?').map_or("", |(_, q)| q);
                let value = url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == q)
                    .map(|(_, v)| v.into_owned());
                (q, value)
            }
            ValueAt::BodyField(f) => {
                let value = body
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                    .and_then(|v| v.get(f).and_then(|x| x.as_str()).map(str::to_owned));
                (f, value)
            }
        };
        let value = value.ok_or_else(|| {
            CredentialError::RuleRefused(format!("{name} needs `{field}` (a string)"))
        })?;
        let allowed = super::mapped(who.grant, &rule.allow).map_err(|_| {
            CredentialError::RuleRefused(format!("{name}: the grant allows no `{field}`"))
        })?;
        if !allowed.contains(&value) {
            return Err(CredentialError::RuleRefused(format!(
                "{name}: {field} `{}` is outside the grant",
                printable(&value)
            )));
        }
        let token = HeaderValue::from_str(&format!("Bearer {}", self.cfg.token.expose()))
            .map_err(|_| CredentialError::InvalidResponse("token is not a header value".into()))?;
        Ok(HeaderChanges {
            set: vec![(AUTHORIZATION, token)],
            remove: vec![PROXY_AUTHORIZATION],
        })
    }
}

/// A caller-supplied string, shortened and without control characters, for a message.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}
