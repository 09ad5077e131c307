//! The command-line client of the admin API (`actbridge approvals …`, `actbridge
//! revocations …`): the same calls an operator would make with curl. Each call returns
//! the API's JSON answer (`--output json` prints it as it is); the `*_text` functions
//! render it for people.

use std::time::Duration;

use serde_json::Value;

/// Why a call to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The admin listener could not be reached.
    #[error("cannot reach the admin API at {url}: {cause}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The cause, with every error under it.
        cause: String,
    },
    /// It answered with an error.
    #[error("the admin API answered {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its error body.
        body: String,
    },
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

async fn call(req: reqwest::RequestBuilder, url: &str) -> Result<String, ClientError> {
    let resp = req.send().await.map_err(|e| ClientError::Unreachable {
        url: url.to_string(),
        cause: crate::http_client::describe(&e),
    })?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(ClientError::Refused { status, body });
    }
    Ok(body)
}

/// `GET /approvals`: `{"approvals": [...]}`, oldest first.
pub async fn approvals(base: &str, token: &str) -> Result<Value, ClientError> {
    let url = format!("{}/approvals", base.trim_end_matches('/'));
    json(call(client().get(&url).bearer_auth(token), &url).await?)
}

/// The pending approvals, one block per request.
pub fn approvals_text(answer: &Value) -> String {
    let items = answer["approvals"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return "no pending approvals\n".to_string();
    }
    let mut out = String::new();
    for a in items {
        let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
        let actors = strings(&a["actors"]);
        let query = a["query"]
            .as_str()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let call = match (a["call"].as_str(), a.get("arguments")) {
            (Some(c), Some(args)) => format!("\n  call:   {c} {args}"),
            (Some(c), None) => format!("\n  call:   {c}"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{id}\n  who:    {user} via {actors}\n  what:   {dir} {method} {authority}{path}{query} (route {route}){call}\n  why:    {reason}\n  digest: {digest}\n  waits until {expires} (Unix seconds)\n",
            digest = s("digest"),
            id = s("id"),
            user = s("user"),
            actors = if actors.is_empty() { "-".to_string() } else { actors.join(" <- ") },
            dir = s("direction"),
            method = s("method"),
            authority = s("authority"),
            path = s("path"),
            route = s("route"),
            reason = s("reason"),
            expires = a["expires_at"].as_u64().unwrap_or(0),
        ));
    }
    out
}

/// Approves (`approve`) or denies the pending approval `id`: `{"id", "decision"}`.
pub async fn decide(
    base: &str,
    token: &str,
    id: &str,
    approve: bool,
) -> Result<Value, ClientError> {
    let verb = if approve { "approve" } else { "deny" };
    let id_part = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("{}/approvals/{id_part}/{verb}", base.trim_end_matches('/'));
    let mut request = client().post(&url).bearer_auth(token);
    if approve {
        // An approval names the digest of what it approves: the one listed now, so the
        // approver approves what `list` showed.
        let listed = approvals(base, token).await?;
        let digest = listed["approvals"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"] == id)
            .and_then(|a| a["digest"].as_str())
            .unwrap_or_default()
            .to_string();
        request = request.json(&serde_json::json!({ "digest": digest }));
    }
    call(request, &url).await?;
    let decision = if approve { "approved" } else { "denied" };
    Ok(serde_json::json!({ "id": id, "decision": decision }))
}

/// `id: approved` or `id: denied`.
pub fn decision_text(answer: &Value) -> String {
    format!(
        "{}: {}\n",
        answer["id"].as_str().unwrap_or("-"),
        answer["decision"].as_str().unwrap_or("-")
    )
}

/// `GET /revocations`: `{"revocations": [...]}`.
pub async fn revocations(base: &str, token: &str) -> Result<Value, ClientError> {
    let url = format!("{}/revocations", base.trim_end_matches('/'));
    json(call(client().get(&url).bearer_auth(token), &url).await?)
}

/// The deny list, one entry per line: kind, value, by whom, when, why.
pub fn revocations_text(answer: &Value) -> String {
    let items = answer["revocations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return "no revocations\n".to_string();
    }
    items.iter().map(revocation_line).collect()
}

fn revocation_line(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
    let reason = r["reason"]
        .as_str()
        .map(|why| format!(": {why}"))
        .unwrap_or_default();
    format!(
        "{kind} {value} (by {by} at {at}){reason}\n",
        kind = s("kind"),
        value = s("value"),
        by = s("by"),
        at = r["at"].as_u64().unwrap_or(0),
    )
}

/// `POST /revocations`: the entry added.
pub async fn revoke(
    base: &str,
    token: &str,
    kind: &str,
    value: &str,
    reason: Option<&str>,
) -> Result<Value, ClientError> {
    let url = format!("{}/revocations", base.trim_end_matches('/'));
    let mut body = serde_json::json!({ "kind": kind, "value": value });
    if let Some(why) = reason {
        body["reason"] = Value::from(why);
    }
    json(call(client().post(&url).bearer_auth(token).json(&body), &url).await?)
}

/// `revoked: <entry>`.
pub fn revoked_text(entry: &Value) -> String {
    format!("revoked: {}", revocation_line(entry))
}

/// `DELETE /revocations?kind=…&value=…`: `{"kind", "value", "lifted"}` (`lifted`:
/// false when there was no such entry).
pub async fn lift(base: &str, token: &str, kind: &str, value: &str) -> Result<Value, ClientError> {
    let mut url =
        url::Url::parse(&format!("{}/revocations", base.trim_end_matches('/'))).map_err(|e| {
            ClientError::Unreachable {
                url: base.to_string(),
                cause: format!("not a URL: {e}"),
            }
        })?;
    url.query_pairs_mut()
        .append_pair("kind", kind)
        .append_pair("value", value);
    let url = url.to_string();
    let request = client().delete(&url).bearer_auth(token);
    let lifted = match call(request, &url).await {
        Ok(_) => true,
        // The API's own 404 (`not_found`), not that of a listener without the API.
        Err(ClientError::Refused { status: 404, body }) if body.contains("not_found") => false,
        Err(e) => return Err(e),
    };
    Ok(serde_json::json!({ "kind": kind, "value": value, "lifted": lifted }))
}

/// `lifted: kind value`, or that there was none.
pub fn lifted_text(answer: &Value) -> String {
    let (kind, value) = (
        answer["kind"].as_str().unwrap_or("-"),
        answer["value"].as_str().unwrap_or("-"),
    );
    if answer["lifted"] == true {
        format!("lifted: {kind} {value}\n")
    } else {
        format!("no revocation of {kind} {value}\n")
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|x| {
            x.iter()
                .filter_map(|y| y.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn json(body: String) -> Result<Value, ClientError> {
    serde_json::from_str(&body).map_err(|e| ClientError::Refused {
        status: 200,
        body: format!("not JSON ({e})"),
    })
}
