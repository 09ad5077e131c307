//! Token exchange without delegation: the happy path, scope, expiry and every refusal.

use serde_json::{Value, json};

use super::support::*;
use crate::claims::now;

#[tokio::test]
async fn exchange_keeps_the_subject_and_retargets_the_token() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let (status, body) = h
        .exchange((OPS, OPS_SECRET), &alice, None, &[("audience", DOCS)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["issued_token_type"], ACCESS_TOKEN);
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        body["scope"],
        "openid profile email documents.read documents.write mcp mcp:read_document mcp:search mcp:delete_document mcp:send_message"
    );
    let (before, after) = (
        claims(&alice),
        claims(body["access_token"].as_str().unwrap()),
    );
    for kept in ["sub", "preferred_username", "email", "name", "groups"] {
        assert_eq!(after[kept], before[kept], "{kept}");
    }
    assert_eq!(after["aud"], DOCS);
    assert_eq!(after["azp"], OPS);
    assert_eq!(after["typ"], "Bearer");
    assert_eq!(after["iss"], h.sts.issuer());
    assert_ne!(after["jti"], before["jti"]);
    assert!(after.get("act").is_none(), "no actor token, no act");
    assert!(after["exp"].as_u64().unwrap() <= before["exp"].as_u64().unwrap());
}

#[tokio::test]
async fn exchange_with_several_audiences_and_basic_auth() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let form = [
        ("grant_type", TOKEN_EXCHANGE),
        ("subject_token", alice.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
        ("audience", DOCS),
        ("audience", GENERAL),
    ];
    let (status, body) = h.token_basic(OPS, OPS_SECRET, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        json!([DOCS, GENERAL])
    );
}

#[tokio::test]
async fn scope_may_only_narrow() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let narrow = h
        .exchange(
            (OPS, OPS_SECRET),
            &alice,
            None,
            &[("audience", DOCS), ("scope", "documents.read")],
        )
        .await;
    assert_eq!(narrow.0, 200, "{}", narrow.1);
    assert_eq!(narrow.1["scope"], "documents.read");
    let narrowed = narrow.1["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims(&narrowed)["scope"], "documents.read");

    // A subject holding only documents.read cannot be exchanged up to documents.write.
    let mut read_only = h.forged_base(OPS, 120);
    read_only["scope"] = json!("openid documents.read");
    let read_only = h.sts.sign_claims(&read_only);
    let widen = h
        .exchange(
            (OPS, OPS_SECRET),
            &read_only,
            None,
            &[("scope", "documents.write")],
        )
        .await;
    assert_refused(
        &widen,
        400,
        "invalid_scope",
        "Invalid scopes: documents.write",
    );
    // Without a scope parameter the subject's scopes carry over.
    let same = h
        .exchange((OPS, OPS_SECRET), &read_only, None, &[("audience", DOCS)])
        .await;
    assert_eq!(same.1["scope"], "openid documents.read");
    let unknown = h
        .exchange(
            (OPS, OPS_SECRET),
            &alice,
            None,
            &[("scope", "openid admin")],
        )
        .await;
    assert_refused(
        &unknown,
        400,
        "invalid_scope",
        "Invalid scopes: openid admin",
    );
}

#[tokio::test]
async fn exp_never_outlives_the_subject_token() {
    let h = Harness::start().await;
    let subject = h.sts.sign_claims(&h.forged_base(OPS, 60));
    let subject_exp = claims(&subject)["exp"].as_u64().unwrap();
    let (status, body) = h
        .exchange((OPS, OPS_SECRET), &subject, None, &[("audience", DOCS)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["exp"]
            .as_u64()
            .unwrap(),
        subject_exp
    );
    assert!(body["expires_in"].as_u64().unwrap() <= 60);
}

#[tokio::test]
async fn bad_subject_tokens_are_invalid_requests() {
    let h = Harness::start().await;
    let mut expired = h.forged_base(OPS, -10);
    expired["exp"] = json!(now() - 10);
    let mut foreign_issuer = h.forged_base(OPS, 60);
    foreign_issuer["iss"] = json!("http://elsewhere/realms/actbridge");
    let mut refresh = h.forged_base(OPS, 60);
    refresh["typ"] = json!("Refresh");
    let mut malformed_act = h.forged_base(OPS, 60);
    malformed_act["act"] = json!("reviewer-ops");
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let mut parts: Vec<&str> = alice.split('.').collect();
    let other_payload = h.sts.sign_claims(&h.forged_base(OPS, 600));
    parts[1] = other_payload.split('.').nth(1).unwrap();
    let tampered = parts.join(".");
    let subjects = [
        "garbage".to_string(),
        h.sts.sign_claims(&expired),
        h.sts.sign_claims(&foreign_issuer),
        h.sts.sign_claims(&refresh),
        h.sts.sign_claims(&malformed_act),
        tampered,
    ];
    for subject in subjects {
        let got = h
            .exchange((OPS, OPS_SECRET), &subject, None, &[("audience", DOCS)])
            .await;
        assert_refused(&got, 400, "invalid_request", "Invalid token");
    }
    // A token signed by another key (another service with the same issuer) is refused too.
    let public_url = h.sts.issuer().replace("/realms/actbridge", "");
    let realm = crate::Realm::from_yaml_str(DEMO_REALM).unwrap();
    let impostor = crate::TokenService::new(realm, &public_url, None).unwrap();
    assert_eq!(impostor.issuer(), h.sts.issuer());
    let foreign = impostor.sign_claims(&h.forged_base(OPS, 60));
    let got = h
        .exchange((OPS, OPS_SECRET), &foreign, None, &[("audience", DOCS)])
        .await;
    assert_refused(&got, 400, "invalid_request", "Invalid token");
}

/// Long by design: one table of the exchange refusals, each against Keycloak's answer.
#[tokio::test]
async fn exchange_refusals_match_keycloak() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let ops = (OPS, OPS_SECRET);

    let not_enabled = h
        .token(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", "no-exchange"),
            ("client_secret", "no-exchange-secret"),
            ("subject_token", &alice),
            ("subject_token_type", ACCESS_TOKEN),
        ])
        .await;
    assert_refused(
        &not_enabled,
        400,
        "invalid_request",
        "Standard token exchange is not enabled for the requested client",
    );

    let base = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("grant_type", TOKEN_EXCHANGE.into()),
            ("client_id", OPS.into()),
            ("client_secret", OPS_SECRET.into()),
        ];
        f.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        f
    };
    let send = |form: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            h.token(&pairs).await
        }
    };
    assert_refused(
        &send(base(&[("subject_token_type", ACCESS_TOKEN)])).await,
        400,
        "invalid_request",
        "Parameter 'subject_token' required for standard token exchange",
    );
    let mut no_type = base(&[]);
    no_type.push(("subject_token", alice.clone()));
    assert_refused(
        &send(no_type).await,
        400,
        "invalid_request",
        "Parameter 'subject_token_type' required for standard token exchange",
    );
    let mut id_type = base(&[(
        "subject_token_type",
        "urn:ietf:params:oauth:token-type:id_token",
    )]);
    id_type.push(("subject_token", alice.clone()));
    assert_refused(
        &send(id_type).await,
        400,
        "invalid_request",
        "Parameter 'subject_token' supports access tokens only",
    );
    let got = h
        .exchange(ops, &alice, None, &[("subject_issuer", "google")])
        .await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "Parameter 'subject_issuer' is not supported for standard token exchange",
    );

    let refresh_type = [(
        "requested_token_type",
        "urn:ietf:params:oauth:token-type:refresh_token",
    )];
    let got = h.exchange(ops, &alice, None, &refresh_type).await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "requested_token_type unsupported",
    );
    let explicit = [("requested_token_type", ACCESS_TOKEN), ("audience", DOCS)];
    assert_eq!(h.exchange(ops, &alice, None, &explicit).await.0, 200);

    let got = h
        .exchange(
            ops,
            &alice,
            None,
            &[("audience", "spiffe://demo.example.com/service/nope")],
        )
        .await;
    assert_refused(&got, 400, "invalid_client", "Audience not found");
    let got = h
        .exchange(ops, &alice, None, &[("audience", "no-direct")])
        .await;
    assert_refused(
        &got,
        400,
        "invalid_request",
        "Requested audience not available: no-direct",
    );

    // alice's token delegated to reviewer-ops names it alone (aud and azp):
    // summarizer-tech holds nothing.
    let (status, ops_only) = h.exchange(ops, &alice, None, &[("audience", OPS)]).await;
    assert_eq!(status, 200, "{ops_only}");
    let ops_only = ops_only["access_token"].as_str().unwrap();
    let got = h
        .exchange((TECH, TECH_SECRET), ops_only, None, &[("audience", DOCS)])
        .await;
    assert_refused(
        &got,
        403,
        "access_denied",
        "Client is not within the token audience",
    );
    // Being in aud without being azp is enough (Keycloak: holder or audience).
    let for_tech = h.exchange(ops, &alice, None, &[("audience", TECH)]).await.1;
    let for_tech = for_tech["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        h.exchange((TECH, TECH_SECRET), &for_tech, None, &[("audience", DOCS)])
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn without_audience_the_clients_own_audiences_apply() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let (status, body) = h.exchange((OPS, OPS_SECRET), &alice, None, &[]).await;
    assert_eq!(status, 200, "{body}");
    let c: Value = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], OPS);
}

/// An audience scope (`audience_scopes`) the client lists makes its audience available to
/// an exchange that asks for it, though the subject token does not hold the scope; not
/// asked for, the audience is not available (Keycloak's optional client scope with an
/// Audience mapper).
#[tokio::test]
async fn an_audience_scope_asked_for_makes_its_audience_available() {
    let h = Harness::start().await;
    let alice = h.password(PORTAL, PORTAL_SECRET, "alice", "alice123").await;
    let tech = (TECH, TECH_SECRET);
    let agent_service = "spiffe://demo.example.com/service/agent-service";
    assert_refused(
        &h.exchange(tech, &alice, None, &[("audience", agent_service)])
            .await,
        400,
        "invalid_request",
        &format!("Requested audience not available: {agent_service}"),
    );
    let scoped = [
        ("audience", agent_service),
        ("scope", "agent-service-audience"),
    ];
    let (status, body) = h.exchange(tech, &alice, None, &scoped).await;
    assert_eq!(status, 200, "{body}");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], agent_service);
    assert_eq!(c["scope"], "agent-service-audience");
    // Another agent does not list the scope: no audience, and the scope is refused.
    let (status, _) = h.exchange((OPS, OPS_SECRET), &alice, None, &scoped).await;
    assert_eq!(status, 400);
}
