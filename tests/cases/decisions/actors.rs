//! An issuer whose actors come from `azp` (Keycloak's standard token exchange, which
//! writes no `act`): the agent that asked for a token is its one actor, an `act` claim is
//! not the issuer's, and an exchange that would drop another agent is refused. The
//! embedded token service stands in for Keycloak here (it sets `azp` as Keycloak does);
//! tests/cases/keycloak.rs runs the same rules against the real one.

use super::failures::scripted_config;
use super::outcomes::policies;
use super::*;
use crate::support::config_edit::ConfigEdit;

#[tokio::test]
async fn with_actors_from_azp_the_requester_is_the_actor_and_no_chain_is_shortened() {
    use Expect::*;
    let dir = policies();
    let sts = Sts::start().await;
    let config = ConfigEdit::of(&scripted_config(&sts, dir.path(), None))
        .set("issuers[0].actors_from", "azp")
        .set(
            "issuers[0].agent_clients",
            "['spiffe://demo.example.com/agent/*']",
        )
        .set("inbound.delegation", "true")
        .set("outbound.send_actor_token", "false")
        .yaml();
    let p = pipeline(&config, Arc::new(DenyList::load(None).unwrap())).await;
    let own = sts.login("alice", "alice123", PORTAL, PORTAL_SECRET).await;
    // Exchanged with no actor token, as Keycloak does: `azp` = the agent, no `act`.
    let by = async |agent: &str| {
        sts.exchange_as(agent, &own, AGENT, false)
            .await
            .unwrap_or_else(|(status, body)| panic!("{agent}: {status} {body}"))
    };
    let by_itself = by("summarizer-tech").await;
    let by_ops = by("reviewer-ops").await;
    // The embedded service's own delegation, which nests `act`.
    let nested = sts.delegated("alice", "summarizer-tech", AGENT).await;

    let docs = || row("", "document-service", "/ok", ForwardUnchanged);
    let inbound = || Row {
        direction: "inbound",
        envoy: None,
        ..row("", "summarizer-tech", "/ok", ForwardUnchanged)
    };
    let rows: Vec<(&str, Row, &str, Expect)> = vec![
        (
            "the agent's own exchange: it is the actor",
            docs(),
            &by_itself,
            ForwardWithNewAuthorization,
        ),
        (
            "the user's own token (azp the front end): no actor",
            docs(),
            &own,
            Deny(403, "delegation_required"),
        ),
        (
            "an act claim: not the issuer's",
            docs(),
            &nested,
            Deny(401, "token_act_not_issued"),
        ),
        (
            "another agent's exchange, outbound: it would be dropped",
            docs(),
            &by_ops,
            Deny(403, "chain_not_recordable"),
        ),
        (
            "another agent's exchange, delegated inbound: it would be dropped",
            inbound(),
            &by_ops,
            Deny(403, "chain_not_recordable"),
        ),
        (
            "the user's own token, delegated inbound",
            inbound(),
            &own,
            ForwardWithNewAuthorization,
        ),
    ];
    let mut failures = Vec::new();
    for (name, r, token, expect) in rows {
        let presented = format!("Bearer {token}");
        let got = decide(&p, &r, Some(presented.clone())).await;
        note(&mut failures, name, &got, expect, &presented);
    }
    all_passed(&failures, "rows");
}
