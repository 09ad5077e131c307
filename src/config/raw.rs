//! The configuration file as written: serde types with `deny_unknown_fields` and a doc
//! comment on every key. [`super::validate`] turns them into [`super::Config`].
//!
//! ```text
//! listen:
//!   ext_proc: tcp://127.0.0.1:9001
//!   admin: 127.0.0.1:9902
//! issuers:
//!   - issuer: http://127.0.0.1:8180/realms/demo
//!     audiences: [spiffe://demo.example.com/agent/summarizer-tech]
//! inbound: {}
//! outbound:
//!   token_endpoint: http://127.0.0.1:8180/realms/demo/protocol/openid-connect/token
//!   client:
//!     client_id: spiffe://demo.example.com/agent/summarizer-tech
//!     auth: {method: client_secret_post, secret_file: /run/secrets/client-secret}
//!   routes:
//!     - host: document-service
//!       cluster: document_service
//!       action: exchange
//!       audience: spiffe://demo.example.com/service/document-service
//!       scopes: [documents.read]
//! ```

use serde::Deserialize;

use serde_path_to_error::Segment;

use super::inbound::RawInbound;
use super::issuers::RawIssuer;
use super::listen::RawListen;
use super::outbound::RawOutbound;
use super::tokens::RawTokens;
use super::{ConfigError, Problems};

/// The whole file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Where actbridge listens.
    pub listen: RawListen,
    /// Trusted token issuers. A token whose `iss` is not listed here is refused.
    pub issuers: Vec<RawIssuer>,
    /// Limits on presented tokens, for both directions.
    #[serde(default)]
    pub tokens: RawTokens,
    /// Requests entering the pod (the ext_proc filter with direction `inbound`).
    #[serde(default)]
    pub inbound: RawInbound,
    /// Requests the agent makes (the ext_proc filter with direction `outbound`).
    /// Without this section every outbound request is refused.
    #[serde(default)]
    pub outbound: Option<RawOutbound>,
    /// The Rego policy (see [`super::policy::RawPolicy`]).
    #[serde(default)]
    pub policy: Option<super::policy::RawPolicy>,
    /// Credential backends for destinations that do not accept actbridge's JWTs (see
    /// [`super::credentials::RawCredential`]). Routes use them by name.
    #[serde(default)]
    pub credentials: Vec<super::credentials::RawCredential>,
    /// The tamper-evident audit log (see [`super::audit::RawAudit`]).
    #[serde(default)]
    pub audit: Option<super::audit::RawAudit>,
    /// The authenticated admin API (see [`super::admin::RawAdminApi`]).
    #[serde(default)]
    pub admin_api: Option<super::admin::RawAdminApi>,
    /// Where the deny list is kept (see [`super::admin::RawRevocation`]).
    #[serde(default)]
    pub revocation: Option<super::admin::RawRevocation>,
    /// Human approvals (see [`super::admin::RawApprovals`]).
    #[serde(default)]
    pub approvals: Option<super::admin::RawApprovals>,
    /// The workload identity from the SPIFFE Workload API (see
    /// [`super::spiffe::RawSpiffe`]).
    #[serde(default)]
    pub spiffe: Option<super::spiffe::RawSpiffe>,
    /// Trace export (see [`super::telemetry::RawTelemetry`]); the `OTEL_*` variables
    /// override it.
    #[serde(default)]
    pub telemetry: Option<super::telemetry::RawTelemetry>,
    /// Stores shared by several replicas (see [`super::state::RawState`]); without it,
    /// each process keeps its own.
    #[serde(default)]
    pub state: Option<super::state::RawState>,
    /// Per-identity rate limits (see [`super::rate_limits::RawRateLimits`]).
    #[serde(default)]
    pub rate_limits: Option<super::rate_limits::RawRateLimits>,
}

impl RawConfig {
    /// Parses YAML; errors name the key that failed (every one: see [`RawConfig::parse_all`]).
    pub fn parse(text: &str) -> Result<RawConfig, ConfigError> {
        let parsed = RawConfig::parse_all(text);
        parsed.problems.finish()?;
        parsed.raw.ok_or_else(|| ConfigError::Parse {
            key: ".".into(),
            message: "the document does not have the config's shape".into(),
        })
    }

    /// Parses YAML, naming the mistake in every section and every list item (each route,
    /// issuer, credential), not only the first: what fails is set aside and the rest read
    /// again. `raw` is what remains, when it is a config (a required section set aside
    /// leaves none); it can still be validated, its keys mapped back to the file's with
    /// [`Parsed::as_in_file`].
    pub(crate) fn parse_all(text: &str) -> Parsed {
        let mut parsed = Parsed {
            raw: None,
            problems: Problems::default(),
            set_aside: SetAside::default(),
        };
        let mut doc: serde_yaml_ng::Value = match serde_yaml_ng::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                parsed.problems.push(ConfigError::Parse {
                    key: ".".into(),
                    message: e.to_string(),
                });
                return parsed;
            }
        };
        // Each round sets one part aside; a file has at most a few hundred.
        for _ in 0..1024 {
            let error = match serde_path_to_error::deserialize::<_, RawConfig>(doc.clone()) {
                Ok(raw) => {
                    parsed.raw = Some(raw);
                    return parsed;
                }
                Err(e) => e,
            };
            let path: Vec<Segment> = error.path().iter().cloned().collect();
            let message = error.into_inner().to_string();
            // A required section missing because it was set aside is not news.
            if path.is_empty() && parsed.set_aside.explains(&message) {
                break;
            }
            parsed.problems.push(ConfigError::Parse {
                key: parsed.set_aside.original_key(&path),
                message,
            });
            if !parsed.set_aside.remove(&mut doc, &path) {
                break;
            }
        }
        parsed
    }
}

/// What [`RawConfig::parse_all`] made of a file.
pub(crate) struct Parsed {
    /// The config, less what failed to parse.
    pub raw: Option<RawConfig>,
    /// What failed, keys as in the file.
    pub problems: Problems,
    set_aside: SetAside,
}

impl Parsed {
    /// The errors of validating `raw` worth reporting beside the parse errors, their
    /// keys as in the file. One is left out when its section reads one that lost a part
    /// (a route naming a credential that did not parse would be reported unknown).
    pub(crate) fn worth_reporting(&self, e: ConfigError) -> Vec<ConfigError> {
        let mut kept = Problems::default();
        kept.push(e);
        kept.into_errors()
            .into_iter()
            .filter(|e| !e.key().is_some_and(|k| self.set_aside.may_mislead(k)))
            .map(|e| self.as_in_file(e))
            .collect()
    }

    /// `e` (an error about `raw`) with its keys' list indices as in the file.
    fn as_in_file(&self, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Parse { key, message } => ConfigError::Parse {
                key: self.set_aside.file_key(&key),
                message,
            },
            ConfigError::Invalid { key, problem } => ConfigError::Invalid {
                key: self.set_aside.file_key(&key),
                problem,
            },
            ConfigError::Several { file, problems } => ConfigError::Several {
                file,
                problems: problems
                    .into_iter()
                    .map(|(line, e)| (line, self.as_in_file(e)))
                    .collect(),
            },
            e => e,
        }
    }
}

/// What was set aside while looking for every parse error: whole top-level sections, or
/// items of the first list on a failing key's path (whose later items move up, so later
/// errors' indices are mapped back to the file's).
#[derive(Default)]
struct SetAside {
    sections: Vec<String>,
    /// (the list's key, the file's indices removed from it).
    items: Vec<(String, Vec<usize>)>,
}

impl SetAside {
    /// `missing field `x`` for a section set aside.
    fn explains(&self, message: &str) -> bool {
        self.sections
            .iter()
            .any(|s| message.contains(&format!("missing field `{s}`")))
    }

    /// The key of `path`, with the first list's index as in the file.
    fn original_key(&self, path: &[Segment]) -> String {
        let mut out = String::new();
        let mut first_list = true;
        for seg in path {
            match seg {
                Segment::Seq { index } if first_list => {
                    first_list = false;
                    let mut index = *index;
                    if let Some((_, removed)) = self.items.iter().find(|(k, _)| *k == out) {
                        // `removed` ascending: each one at or before the index shifts it.
                        for r in removed {
                            if *r <= index {
                                index += 1;
                            }
                        }
                    }
                    out.push_str(&format!("[{index}]"));
                }
                Segment::Seq { index } => out.push_str(&format!("[{index}]")),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                Segment::Unknown => out.push_str(".?"),
            }
        }
        if out.is_empty() { ".".into() } else { out }
    }

    /// Whether a validation error at `key` may come from what was set aside: it is
    /// about a list that lost items, or its section reads a section that lost a part.
    fn may_mislead(&self, key: &str) -> bool {
        let section = key.split(['.', '[']).next().unwrap_or_default();
        let reads: &[&str] = match section {
            "outbound" => &["credentials", "policy", "spiffe"],
            "rate_limits" => &["outbound"],
            "approvals" => &["admin_api"],
            "issuers" if key.contains(".introspection") => &["outbound"],
            "listen" => &["spiffe"],
            _ => &[],
        };
        let lost = |s: &&str| {
            self.sections.iter().any(|x| x == s)
                || self
                    .items
                    .iter()
                    .any(|(list, _)| list.split(['.', '[']).next() == Some(*s))
        };
        // A list that lost items may now look empty or short.
        let about_a_shortened_list = self.items.iter().any(|(list, _)| list == key);
        about_a_shortened_list || reads.iter().any(lost)
    }

    /// `key` (as written by validation, of the config less what was set aside) with the
    /// index of a list that lost items as in the file.
    fn file_key(&self, key: &str) -> String {
        for (list, removed) in &self.items {
            let Some(rest) = key
                .strip_prefix(list.as_str())
                .and_then(|r| r.strip_prefix('['))
            else {
                continue;
            };
            let Some((index, tail)) = rest.split_once(']') else {
                continue;
            };
            let Ok(mut index) = index.parse::<usize>() else {
                continue;
            };
            for r in removed {
                if *r <= index {
                    index += 1;
                }
            }
            return format!("{list}[{index}]{tail}");
        }
        key.to_string()
    }

    /// Removes what `path` failed in from `doc`: the item of the first list on the path,
    /// else the top-level section. `false` when nothing could be removed.
    fn remove(&mut self, doc: &mut serde_yaml_ng::Value, path: &[Segment]) -> bool {
        let Some(Segment::Map { key: section }) = path.first() else {
            return false;
        };
        let list_at = path.iter().position(|s| matches!(s, Segment::Seq { .. }));
        if let Some(at) = list_at {
            let list_key = self.original_key(&path[..at]);
            let original = self.original_key(&path[..=at]);
            let mut node = &mut *doc;
            for seg in &path[..at] {
                let Segment::Map { key } = seg else { break };
                match node.get_mut(key.as_str()) {
                    Some(next) => node = next,
                    None => return false,
                }
            }
            if let (Some(list), Segment::Seq { index }) = (node.as_sequence_mut(), &path[at])
                && *index < list.len()
            {
                list.remove(*index);
                let file_index = original
                    .rsplit_once('[')
                    .and_then(|(_, i)| i.trim_end_matches(']').parse().ok())
                    .unwrap_or(*index);
                match self.items.iter_mut().find(|(k, _)| *k == list_key) {
                    Some((_, removed)) => {
                        removed.push(file_index);
                        removed.sort_unstable();
                    }
                    None => self.items.push((list_key, vec![file_index])),
                }
                return true;
            }
        }
        let removed = doc
            .as_mapping_mut()
            .and_then(|m| m.remove(section.as_str()))
            .is_some();
        if removed {
            self.sections.push(section.clone());
        }
        removed
    }
}
