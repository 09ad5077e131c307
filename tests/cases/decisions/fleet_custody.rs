//! Token custody across the actbridge processes of one pod (`state.redis`): a
//! placeholder handed to the app by one process resolves at another; Redis holds
//! neither the token nor the placeholder, only an entry sealed under the placeholder;
//! Redis gone refuses (503) rather than handing out a placeholder no other process could
//! resolve, or calling one unknown that may not be.

use super::fleet::replica;
use super::stateful::guarded_config;
use super::*;
use crate::support::config_edit::ConfigEdit;
use crate::support::redis::Redis;

#[tokio::test]
async fn a_placeholder_handed_out_by_one_process_resolves_at_another() {
    use Expect::*;
    let sts = Sts::start().await;
    let mut redis = Redis::start();
    let yaml = ConfigEdit::of(&guarded_config(&sts))
        .set(
            "state",
            &format!("{{redis: {{url: '{}', timeout: 200ms}}}}", redis.url()),
        )
        .yaml();
    let (inbound_side, outbound_side) = (replica(&yaml).await, replica(&yaml).await);
    let caller = sts.delegated("alice", "summarizer-tech", AGENT).await;
    let inbound = Row {
        direction: "inbound",
        envoy: None,
        ..row("", "app", "/data", ForwardUnchanged)
    };
    let docs = row("", "document-service", "/documents", ForwardUnchanged);
    let mut failures = Vec::new();

    let got = decide(&inbound_side.p, &inbound, Some(format!("Bearer {caller}"))).await;
    let placeholder = app_authorization(&got);
    let got = decide(&outbound_side.p, &docs, Some(placeholder.clone())).await;
    note(
        &mut failures,
        "resolved at the other process",
        &got,
        ForwardWithNewAuthorization,
        &placeholder,
    );
    let forged = format!("{placeholder}x");
    let got = decide(&outbound_side.p, &docs, Some(forged.clone())).await;
    note(
        &mut failures,
        "a placeholder never handed out",
        &got,
        Deny(401, "placeholder_unknown"),
        &forged,
    );

    // What Redis holds: no token, no placeholder, nothing readable of the caller.
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("actbridge:custody:*")
        .query(&mut conn)
        .unwrap();
    if keys.len() != 1 {
        failures.push(format!("custody keys in Redis: {keys:?}"));
    }
    let bare = placeholder.trim_start_matches("Bearer ");
    for key in &keys {
        let value: Vec<u8> = redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        let shown = String::from_utf8_lossy(&value);
        for (what, secret) in [
            ("the placeholder", bare),
            ("the token", caller.as_str()),
            ("the user", "alice"),
        ] {
            if key.contains(secret) || shown.contains(secret) {
                failures.push(format!("Redis holds {what} in the clear under {key}"));
            }
        }
    }

    // Redis gone: the process that holds the entry still resolves it; the other cannot
    // tell, and refuses (503) rather than calling it unknown; no new placeholder is made.
    redis.stop();
    let got = decide(&inbound_side.p, &docs, Some(placeholder.clone())).await;
    note(
        &mut failures,
        "Redis gone, where it was handed out",
        &got,
        ForwardWithNewAuthorization,
        &placeholder,
    );
    let other = replica(&yaml).await;
    let got = decide(&other.p, &docs, Some(placeholder.clone())).await;
    note(
        &mut failures,
        "Redis gone, elsewhere",
        &got,
        Deny(503, "custody_unavailable"),
        &placeholder,
    );
    let own = sts.alice().await;
    let got = decide(&inbound_side.p, &inbound, Some(format!("Bearer {own}"))).await;
    note(
        &mut failures,
        "Redis gone, a new placeholder",
        &got,
        Deny(503, "custody_unavailable"),
        &own,
    );
    all_passed(&failures, "steps");
}
