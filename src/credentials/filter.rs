//! `filter`: for APIs with no scoped credentials (a chat API, say). actbridge holds the
//! one service token and injects it only into requests a rule allows for the grant:
//! the method and exact path must match a rule, and the value the rule names — a
//! top-level body field or a query parameter, e.g. `channel` — must be one the grant
//! maps to. The upstream's answer passes unchanged. The agent never holds the token.
//!
//! The filter is the only enforcement point for such an API, so it judges exactly what
//! the upstream will read: the path as decoded by every server, the value spelled once
//! and only once (`params`), the body only as its declared type (`body`), never a
//! query parameter that a server merging query and body could take instead, and no
//! body at all on a route whose rule reads the query.

mod body;
mod params;

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

    /// The rule for this method and (decoded) path, by index.
    fn rule_for(&self, req: &HttpRequest<'_>) -> Option<(usize, &FilterRule)> {
        self.cfg
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.method == req.method && r.path == req.canonical_path)
    }

    /// Refuses a request no rule covers, and a body on a rule that reads the query; the
    /// policy sees the path's segments.
    pub(super) fn scope(&self, req: &HttpRequest<'_>) -> Result<Scope, CredentialError> {
        let Some((i, rule)) = self.rule_for(req) else {
            return Err(CredentialError::RuleRefused(format!(
                "no rule allows {} {}",
                req.method,
                params::printable(req.canonical_path)
            )));
        };
        if matches!(rule.value_at, ValueAt::Query(_)) && req.has_body {
            return Err(CredentialError::RuleRefused(format!(
                "{} reads the query: a request body is refused (a server may read the value from it)",
                rule_name(i, rule)
            )));
        }
        Ok(Scope {
            action: super::action_of(req.method),
            resource: req
                .canonical_path
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
        let name = rule_name(i, rule);
        let refused = |why: String| CredentialError::RuleRefused(format!("{name}: {why}"));
        let query = req.path.split_once('?').map_or("", |(_, q)| q);
        let pairs = params::strict_pairs(query).map_err(|e| refused(format!("query: {e}")))?;
        let (field, value) = match &rule.value_at {
            ValueAt::Query(q) => {
                let value =
                    params::judged(query, &pairs, q).map_err(|e| refused(format!("query: {e}")))?;
                (q, value)
            }
            ValueAt::BodyField(f) => {
                // A server that merges query and body parameters could take this one.
                if params::any_name_reads_as(query, f) {
                    return Err(refused(format!(
                        "`{f}` is read from the body, not the query"
                    )));
                }
                let value = match body {
                    None => None,
                    Some(bytes) => {
                        let kind = body::declared(req.content_types, req.content_encodings)
                            .map_err(|e| refused(e.to_string()))?;
                        body::field(kind, bytes, f).map_err(|e| refused(e.to_string()))?
                    }
                };
                (f, value)
            }
        };
        let value = value.ok_or_else(|| {
            CredentialError::RuleRefused(format!("{name} needs `{field}` (a string)"))
        })?;
        let allowed = super::mapped(who.grant, &rule.allow)
            .map_err(|_| refused(format!("the grant allows no `{field}`")))?;
        if !allowed.contains(&value) {
            return Err(refused(format!(
                "{field} `{}` is outside the grant",
                params::printable(&value)
            )));
        }
        let token = HeaderValue::from_str(&format!("Bearer {}", self.cfg.token.expose()))
            .map_err(|_| CredentialError::InvalidResponse("token is not a header value".into()))?;
        Ok(HeaderChanges {
            set: vec![(AUTHORIZATION, token)],
            remove: vec![PROXY_AUTHORIZATION],
            on_rejected: None,
        })
    }
}

/// `rule N (METHOD PATH)`, as refusals name a rule.
fn rule_name(i: usize, rule: &FilterRule) -> String {
    format!("rule {} ({} {})", i + 1, rule.method, rule.path)
}
