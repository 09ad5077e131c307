//! The command-line client of the approvals API (`actbridge approvals …`): the same
//! calls an operator would make with curl, with the answers printed for people.

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

/// The pending approvals, one block per request, oldest first.
pub async fn list(base: &str, token: &str) -> Result<String, ClientError> {
    let url = format!("{}/approvals", base.trim_end_matches('/'));
    let body = call(client().get(&url).bearer_auth(token), &url).await?;
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let items = v["approvals"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return Ok("no pending approvals\n".to_string());
    }
    let mut out = String::new();
    for a in items {
        let s = |k: &str| a[k].as_str().unwrap_or("-").to_string();
        let actors: Vec<String> = a["actors"]
            .as_array()
            .map(|x| {
                x.iter()
                    .filter_map(|y| y.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
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
    Ok(out)
}

/// Approves (`approve`) or denies the pending approval `id`.
pub async fn decide(
    base: &str,
    token: &str,
    id: &str,
    approve: bool,
) -> Result<String, ClientError> {
    let verb = if approve { "approve" } else { "deny" };
    let id_part = percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC);
    let url = format!("{}/approvals/{id_part}/{verb}", base.trim_end_matches('/'));
    let mut request = client().post(&url).bearer_auth(token);
    if approve {
        // An approval names the digest of what it approves: the one listed now, so the
        // approver approves what `list` showed.
        let list_url = format!("{}/approvals", base.trim_end_matches('/'));
        let body = call(client().get(&list_url).bearer_auth(token), &list_url).await?;
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let digest = v["approvals"]
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
    Ok(format!(
        "{id}: {}\n",
        if approve { "approved" } else { "denied" }
    ))
}
