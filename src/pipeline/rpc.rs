//! Agent-protocol routes: `exchange` routes with `protocol: mcp` or `protocol: a2a`.
//!
//! A POST is decided on its body: each JSON-RPC message is judged by the policy with
//! `mcp` (method, tool, arguments) or `a2a` (method, agent) in its input; every message
//! must be allowed (a batch is refused as a whole). The agent's token is then exchanged
//! as on any exchange route — or, when the policy asks for it on a `tools/call`, for a
//! single-use tool token: audience the MCP server, one scope naming the tool, never
//! cached. A `tools/list` is let through with a [`ToolsNarrowing`]: its result is read
//! back and the tools the policy would refuse are removed. Other methods (GET for the
//! server's event stream, DELETE to end a session) are decided on their headers, with
//! no `mcp` in the input. Refusals are rendered in the protocol's terms
//! ([`RpcTrail::render`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use http::header::{AUTHORIZATION, PROXY_AUTHORIZATION};
use serde_json::Value;

use super::context::{Context, Freshness};
use super::judge::{RpcInput, Target, ask};
use super::outbound::Outbound;
use super::trail::Trail;
use super::{Decision, Denial, Mutations, Refusal, RequestFacts};
use crate::agentproto::jsonrpc::{self, Message, code};
use crate::agentproto::{a2a, mcp};
use crate::config::{ExchangeTarget, RouteProtocol, TokenRules};
use crate::jwt::VerifiedToken;
use crate::policy::{A2aInput, ActorInput, McpInput, PolicyEngine};

/// An agent-protocol route, as configured.
pub(super) struct Route<'a> {
    pub name: &'a str,
    pub target: &'a ExchangeTarget,
    pub rules: TokenRules,
    pub protocol: &'a RouteProtocol,
}

/// What a refusal on an agent-protocol route is rendered with.
#[derive(Debug, Clone)]
pub(crate) struct RpcTrail {
    /// `mcp` or `a2a`.
    pub protocol: &'static str,
    /// The id to answer with (the single message's, else null).
    pub reply_id: Value,
    /// The calls judged so far (`tools/call read_document`, `tools/list`).
    pub calls: Vec<String>,
    /// The scope a refused `tools/call` needs (for `insufficient_scope`).
    pub scope: Option<String>,
}

impl RpcTrail {
    /// Nothing known yet but the protocol (`mcp` or `a2a`).
    pub(super) fn new(protocol: &'static str) -> Self {
        RpcTrail {
            protocol,
            reply_id: Value::Null,
            calls: Vec::new(),
            scope: None,
        }
    }

    /// The denial in the protocol's terms: a JSON-RPC error object as the body, and on
    /// a 403 of an MCP route the challenge of the MCP authorization specification
    /// (2025-11-25, "Scope Challenge Handling"): `Bearer error="insufficient_scope"`
    /// with the scope the call needs.
    pub(super) fn render(&self, mut denial: Denial, refusal: &Refusal) -> Denial {
        let code = match refusal {
            Refusal::JsonRpc(e) => e.code(),
            Refusal::Mcp(mcp::McpError::BadToolCall) | Refusal::SingleUseBatch => {
                code::INVALID_REQUEST
            }
            // The server's answer, not the caller's message, is what failed.
            Refusal::Mcp(mcp::McpError::BadListResponse(_)) => code::REFUSED,
            _ => code::REFUSED,
        };
        denial.body = Some(jsonrpc::error_body(
            &self.reply_id,
            code,
            &denial.description,
        ));
        if denial.status == 403 && self.protocol == "mcp" {
            let mut challenge = String::from("Bearer error=\"insufficient_scope\"");
            if let Some(scope) = &self.scope {
                challenge.push_str(&format!(", scope=\"{scope}\""));
            }
            let description: String = denial
                .description
                .chars()
                .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
                .collect();
            challenge.push_str(&format!(", error_description=\"{description}\""));
            denial.www_authenticate = Some(challenge);
        }
        denial
    }
}

/// The headers phase of an agent-protocol route: a POST is decided on its body
/// (`Some`); anything else is an ordinary exchange (`None`).
pub(super) fn on_headers(
    req: &RequestFacts,
    protocol: &RouteProtocol,
    trail: &mut Trail,
) -> Result<Option<Decision>, Refusal> {
    let max_bytes = match protocol {
        RouteProtocol::Http => return Ok(None),
        RouteProtocol::Mcp { max_body_bytes, .. } | RouteProtocol::A2a { max_body_bytes } => {
            *max_body_bytes
        }
    };
    // Only what the protocol defines goes on: POST carries the JSON-RPC messages (read
    // and judged below); MCP's Streamable HTTP also has GET (the server's event stream)
    // and DELETE (the session's end), A2A a GET (its Agent Card) — none with a body, which
    // would reach the server unjudged. Any other method is refused.
    let bodyless = matches!(
        (protocol, req.method.as_str()),
        (RouteProtocol::Mcp { .. }, "GET" | "DELETE") | (RouteProtocol::A2a { .. }, "GET")
    );
    if bodyless {
        if !req.end_of_stream {
            return Err(Refusal::RpcHttpMethod(req.method.clone()));
        }
        return Ok(None);
    }
    if req.method != "POST" {
        return Err(Refusal::RpcHttpMethod(req.method.clone()));
    }
    trail.rpc = Some(RpcTrail::new(protocol.name()));
    // No body follows: Envoy would never send a body phase, and the request would go
    // on undecided.
    if req.end_of_stream {
        return Err(jsonrpc::RpcError::Parse.into());
    }
    Ok(Some(Decision::ReadBody {
        // Until the body is decided, the request carries no credential at all.
        mutations: Mutations {
            set: Vec::new(),
            remove: vec![AUTHORIZATION, PROXY_AUTHORIZATION],
        },
        max_bytes,
        watch_response: matches!(protocol, RouteProtocol::Mcp { .. }),
    }))
}

/// The body phase: parse, judge every message, exchange, and narrow a `tools/list`.
pub(super) async fn on_body(
    outbound: &Outbound,
    cx: &mut Context<'_>,
    body: Option<&[u8]>,
    route: &Route<'_>,
) -> Result<Decision, Refusal> {
    let req = cx.req;
    let rpc = cx
        .trail
        .rpc
        .get_or_insert_with(|| RpcTrail::new(route.protocol.name()));
    let body = body.ok_or(Refusal::BodyTooLarge)?;
    let envelope = jsonrpc::parse(body)?;
    rpc.reply_id = envelope.reply_id();
    let calls = envelope
        .messages
        .iter()
        .map(|m| describe(route, m))
        .collect::<Result<Vec<_>, _>>()?;
    rpc.calls = calls.iter().map(RpcInput::what).collect();

    let accepted = outbound.accept(cx, route.name, route.rules).await?;
    let adds_itself = outbound
        .agent
        .adds_itself_exchanging(&accepted.verified, false)?;
    let chain = outbound.agent.next_chain(&accepted.verified, adds_itself);
    // Each message of a batch is a call, counted on its own.
    for call in &calls {
        let tool = match call {
            RpcInput::Mcp(m) => m.tool.as_deref(),
            RpcInput::A2a(_) => None,
        };
        cx.within_limits(route.name, &accepted.verified, &chain, tool)
            .await?;
    }
    let mut single_use_tool = None;
    let engine = cx.judging.engine;
    if let Some(engine) = engine {
        cx.trail.judged_chain(&chain);
        for call in &calls {
            if let (Some(rpc), RpcInput::Mcp(m)) = (cx.trail.rpc.as_mut(), call) {
                rpc.scope = m.tool.as_deref().map(|t| tool_scope(route.protocol, t));
            }
            let target = Target {
                route: route.name,
                backend: "token_exchange",
                touches: None,
                rpc: Some(call),
            };
            let granted = cx
                .judge(engine, &target, &accepted.verified, chain.clone())
                .await?;
            cx.trail.grant = Some(granted.grant);
            // A single-use token is for a tool call; elsewhere the flag means nothing.
            if granted.single_use_token
                && matches!(call, RpcInput::Mcp(McpInput { tool: Some(_), .. }))
            {
                single_use_tool = Some(call);
            }
        }
    }

    let mutations = match single_use_tool {
        None => {
            outbound
                .issue(cx, &accepted, route.target, adds_itself, Freshness::Cached)
                .await?
        }
        Some(call) => {
            // One capability for one call: a batch cannot share it.
            let tool = match (calls.len(), call) {
                (1, RpcInput::Mcp(McpInput { tool: Some(t), .. })) => t,
                _ => return Err(Refusal::SingleUseBatch),
            };
            let target = ExchangeTarget {
                scopes: vec![tool_scope(route.protocol, tool)],
                ..route.target.clone()
            };
            outbound
                .issue(cx, &accepted, &target, adds_itself, Freshness::SingleUse)
                .await?
        }
    };

    let listing: Vec<Value> = envelope
        .messages
        .iter()
        .filter(|m| m.method.as_deref() == Some(mcp::TOOLS_LIST))
        .filter_map(|m| m.id.clone())
        .collect();
    match (route.protocol, engine) {
        (RouteProtocol::Mcp { .. }, Some(engine)) if !listing.is_empty() => Ok(Decision::Narrow {
            mutations,
            narrowing: Arc::new(ToolsNarrowing {
                engine: engine.clone(),
                ids: listing,
                req: req.clone(),
                route: route.name.to_string(),
                verified: accepted.verified.clone(),
                chain,
            }),
        }),
        _ => Ok(Decision::Continue(mutations)),
    }
}

/// One message as the policy is told.
fn describe(route: &Route<'_>, m: &Message) -> Result<RpcInput, Refusal> {
    Ok(match route.protocol {
        RouteProtocol::A2a { .. } => RpcInput::A2a(A2aInput {
            method: m.method.clone(),
            known: m.method.as_deref().is_some_and(a2a::is_method),
            agent: route.target.audience.clone(),
        }),
        _ => {
            let (tool, arguments) = match m.method.as_deref() {
                Some(mcp::TOOLS_CALL) => {
                    let (tool, args) = mcp::tool_call(m)?;
                    (Some(tool), Some(args))
                }
                _ => (None, None),
            };
            RpcInput::Mcp(McpInput {
                method: m.method.clone(),
                known: m.method.as_deref().is_none_or(mcp::is_method),
                tool,
                arguments,
            })
        }
    })
}

fn tool_scope(protocol: &RouteProtocol, tool: &str) -> String {
    match protocol {
        RouteProtocol::Mcp { tool_scope, .. } => tool_scope.replace("{tool}", tool),
        _ => tool.to_string(),
    }
}

/// A `tools/list` let through: what is needed to judge each tool of its result.
pub struct ToolsNarrowing {
    /// The policy that judged the `tools/list`, which judges its tools.
    engine: Arc<PolicyEngine>,
    ids: Vec<Value>,
    req: RequestFacts,
    route: String,
    verified: Arc<VerifiedToken>,
    chain: Vec<ActorInput>,
}

impl std::fmt::Debug for ToolsNarrowing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolsNarrowing")
            .field("route", &self.route)
            .field("ids", &self.ids)
            .finish()
    }
}

impl ToolsNarrowing {
    /// The route's name.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The request whose response is narrowed.
    pub(super) fn request(&self) -> &RequestFacts {
        &self.req
    }

    /// What the decision knew when it let the `tools/list` through, for the record of a
    /// refused narrowing.
    pub(super) fn trail(&self) -> Trail {
        let mut trail = Trail::default();
        trail.route(&self.route);
        trail.verified(&self.verified);
        trail.judged_chain(&self.chain);
        let mut rpc = RpcTrail::new("mcp");
        if let [id] = self.ids.as_slice() {
            rpc.reply_id = id.clone();
        }
        rpc.calls = vec![mcp::TOOLS_LIST.to_string()];
        trail.rpc = Some(rpc);
        trail
    }

    /// The response body with the tools the policy would refuse removed. A tool is kept
    /// when the policy allows calling it with arguments not yet known (rules on the
    /// arguments apply to the call itself), approval or not. An unreadable response or a
    /// failing policy is an error: nothing unjudged is shown.
    pub(super) async fn narrow(
        &self,
        content_type: &str,
        body: &[u8],
    ) -> Result<(Vec<u8>, usize), Refusal> {
        let mut list = mcp::ToolsList::parse(body, content_type, self.ids.clone())?;
        let names: BTreeSet<String> = list.names()?.into_iter().collect();
        let mut allowed = BTreeSet::new();
        for name in names {
            let call = RpcInput::Mcp(McpInput {
                method: Some(mcp::TOOLS_CALL.to_string()),
                known: true,
                tool: Some(name.clone()),
                arguments: None,
            });
            let target = Target {
                route: &self.route,
                backend: "token_exchange",
                touches: None,
                rpc: Some(&call),
            };
            let d = ask(
                &self.engine,
                &self.req,
                &target,
                &self.verified,
                self.chain.clone(),
            )
            .await?;
            if d.allow && !d.grant.is_empty() {
                allowed.insert(name);
            }
        }
        let removed = list.retain(|n| allowed.contains(n));
        Ok((list.into_body(), removed))
    }
}
