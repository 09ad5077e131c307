//! Delegation: `actor_token` → nested `act`, newest actor outermost, depth bounded.

use serde_json::{Value, json};

use super::support::*;
use crate::realm::derived_service_account_id;

fn sa(client: &str) -> String {
    derived_service_account_id(client).to_string()
}

/// A forged `act` chain of `depth` levels (outermost first).
fn chain(depth: usize) -> Value {
    let mut act = Value::Null;
    for i in (0..depth).rev() {
        let mut level = json!({ "sub": format!("actor-{i}"), "client_id": format!("spiffe://demo.example.com/agent/a{i}") });
        if !act.is_null() {
            level["act"] = act;
        }
        act = level;
    }
    act
}

#[tokio::test]
async fn two_hops_nest_two_actors_newest_outermost() {
    let h = Harness::start().await;
    // alice logs in through reviewer-general; it delegates to reviewer-ops; ops calls documents.
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let general_actor = h.client_credentials(GENERAL, GENERAL_SECRET).await;
    let (status, hop1) = h
        .exchange(
            (GENERAL, GENERAL_SECRET),
            &alice,
            Some(&general_actor),
            &[("audience", OPS)],
        )
        .await;
    assert_eq!(status, 200, "{hop1}");
    let hop1 = hop1["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        claims(&hop1)["act"],
        json!({ "sub": sa(GENERAL), "client_id": GENERAL })
    );

    let ops_actor = h.client_credentials(OPS, OPS_SECRET).await;
    let (status, hop2) = h
        .exchange(
            (OPS, OPS_SECRET),
            &hop1,
            Some(&ops_actor),
            &[("audience", DOCS)],
        )
        .await;
    assert_eq!(status, 200, "{hop2}");
    let c = claims(hop2["access_token"].as_str().unwrap());
    assert_eq!(
        c["act"],
        json!({
            "sub": sa(OPS), "client_id": OPS,
            "act": { "sub": sa(GENERAL), "client_id": GENERAL }
        })
    );
    assert_eq!(c["sub"], ALICE_ID);
    assert_eq!(c["preferred_username"], "alice");
    assert_eq!(c["aud"], DOCS);
    assert_eq!(c["azp"], OPS);
}

#[tokio::test]
async fn a_delegated_token_cannot_shed_its_chain() {
    let h = Harness::start().await;
    let mut subject = h.forged_base(OPS, 120);
    subject["act"] = chain(1);
    let got = h
        .exchange(
            (OPS, OPS_SECRET),
            &h.sts.sign_claims(&subject),
            None,
            &[("audience", DOCS)],
        )
        .await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "The subject_token carries an act claim, so it can only be exchanged with an actor_token",
    );
}

#[tokio::test]
async fn a_chain_deeper_than_ten_is_refused_never_truncated() {
    let h = Harness::start().await;
    let actor = h.client_credentials(OPS, OPS_SECRET).await;

    let mut nine = h.forged_base(OPS, 120);
    nine["act"] = chain(9);
    let (status, body) = h
        .exchange(
            (OPS, OPS_SECRET),
            &h.sts.sign_claims(&nine),
            Some(&actor),
            &[("audience", DOCS)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let act = &claims(body["access_token"].as_str().unwrap())["act"];
    assert_eq!(act["client_id"], OPS);
    assert_eq!(
        act["act"],
        chain(9),
        "the previous chain, untouched, under the new actor"
    );
    assert_eq!(crate::claims::act_depth(Some(act)), Some(10));

    let mut ten = h.forged_base(OPS, 120);
    ten["act"] = chain(10);
    let got = h
        .exchange(
            (OPS, OPS_SECRET),
            &h.sts.sign_claims(&ten),
            Some(&actor),
            &[("audience", DOCS)],
        )
        .await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "Delegation chain depth 11 exceeds the maximum of 10",
    );
}

#[tokio::test]
async fn actor_token_refusals() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let ops = (OPS, OPS_SECRET);
    let aud = [("audience", DOCS)];

    // Another client's actor token.
    let general_actor = h.client_credentials(GENERAL, GENERAL_SECRET).await;
    let got = h.exchange(ops, &alice, Some(&general_actor), &aud).await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "Requesting client does not match the client the actor_token was issued for",
    );
    // Wrong or missing actor_token_type.
    let ops_actor = h.client_credentials(OPS, OPS_SECRET).await;
    let base = [
        ("grant_type", TOKEN_EXCHANGE),
        ("client_id", OPS),
        ("client_secret", OPS_SECRET),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", DOCS),
        ("actor_token", ops_actor.as_str()),
    ];
    assert_refused(
        &h.token(&base).await,
        400,
        "invalid_request",
        "Invalid actor token type",
    );
    let mut jwt_type = base.to_vec();
    jwt_type.push(("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"));
    assert_refused(
        &h.token(&jwt_type).await,
        400,
        "invalid_request",
        "Invalid actor token type",
    );
    // An actor token that does not verify.
    let mut expired = h.forged_base(OPS, -5);
    expired["sub"] = json!(sa(OPS));
    let got = h
        .exchange(ops, &alice, Some(&h.sts.sign_claims(&expired)), &aud)
        .await;
    assert_refused(&got, 400, "invalid_request", "Invalid actor token");
    assert_refused(
        &h.exchange(ops, &alice, Some("x.y.z"), &aud).await,
        400,
        "invalid_request",
        "Invalid actor token",
    );
    // The subject acting for itself: alice's token delegated to reviewer-ops (issued to
    // it, so the client check passes) as the actor of her own.
    let (status, mine) = h.exchange(ops, &alice, None, &[("audience", OPS)]).await;
    assert_eq!(status, 200, "{mine}");
    let mine = mine["access_token"].as_str().unwrap();
    let got = h.exchange(ops, &alice, Some(mine), &aud).await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "Actor and subject user cannot be the same user",
    );
    // And the good case, for contrast.
    assert_eq!(h.exchange(ops, &alice, Some(&ops_actor), &aud).await.0, 200);
}
