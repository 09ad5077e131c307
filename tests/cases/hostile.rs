//! Hostile input through the real Envoy, table-driven: every request is written as raw
//! bytes to the inbound or outbound listener (so CR, LF, NUL and non-UTF-8 reach Envoy as
//! an attacker would send them), each row with the status it must get. The refusals come
//! from Envoy's own codec (malformed HTTP, oversized or too many headers) or from
//! actbridge (401/403/400 with its JSON body); either way the upstream must not see the
//! request. After the table actbridge still answers its health and readiness probes and
//! a good request still passes both ways.
//!
//! `forge` holds the attacker's tools (`token_class` signs with them too), `rows` the
//! table by kind of attack, `table` the rows' shape and the runner.

pub(super) mod forge;
mod rows;
mod table;

use std::sync::Arc;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::echo::Echo;
use crate::support::net::raw_http;
use crate::support::world::{AGENT, Sts, World, claims_of, sidecar_config};
use forge::{Kit, RsaKey, b64, claims_of_header, jws, now, rsa_key};
use table::{To, auth_line, head};

/// The world for the table: the demo token service signing with a key the test holds,
/// summarizer-tech's default sidecar in front of it.
async fn world() -> (World, RsaKey) {
    let issuer_key = rsa_key();
    let sts = Sts::start_with_key(issuer_key.pem.as_bytes()).await;
    let config = sidecar_config(&sts);
    (World::start_with(sts, &config).await, issuer_key)
}

#[tokio::test]
async fn hostile_requests_are_refused_with_their_status_and_never_reach_the_upstream() {
    let (world, issuer) = world().await;
    let key_server = Echo::start().await;
    let jwks_uri = world.sts.service.jwks_uri();
    let jwks: Value = reqwest::get(&jwks_uri).await.unwrap().json().await.unwrap();
    let mut kit = Kit {
        issuer,
        attacker: rsa_key(),
        kid: jwks["keys"][0]["kid"].as_str().unwrap().to_string(),
        issuer_url: world.sts.service.issuer(),
        jwks_bytes: reqwest::get(&jwks_uri)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        key_url: format!("http://127.0.0.1:{}/jwks.json", key_server.port),
        good: String::new(),
        good_out: world.sts.alice_delegated().await,
    };
    kit.good = kit.signed(&kit.claims(json!({})));
    let rows = rows::all(&kit);
    assert!(rows.len() >= 30);

    let failures = table::run(&world, &rows).await;
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}\n\nactbridge log (tail):\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n"),
        tail(&world.actbridge.log(), 40)
    );

    // The upstreams saw exactly the passing rows, and the identity the app got is the
    // verified one.
    assert_eq!(world.app.count(), table::passing(&rows, To::In));
    assert_eq!(world.docs.count(), table::passing(&rows, To::Out));
    let app_seen = world.app.seen();
    assert_eq!(
        app_seen[0].header_all("x-actbridge-username"),
        vec!["alice"]
    );
    let delegated = world.docs.seen()[0].bearer().to_string();
    assert_eq!(claims_of(&delegated)["act"]["client_id"], AGENT);
    assert_eq!(
        key_server.count(),
        0,
        "no key URL from a token was followed"
    );

    alive_and_serving(&world, &kit.good, &kit.good_out).await;
}

/// actbridge answers its probes and a good request passes both ways.
async fn alive_and_serving(world: &World, good_in: &str, good_out: &str) {
    for probe in ["healthz", "readyz"] {
        let r = reqwest::get(format!(
            "http://127.0.0.1:{}/{probe}",
            world.actbridge.admin_port
        ))
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "/{probe}");
    }
    let (apps, docs) = (world.app.count(), world.docs.count());
    let r = world
        .inbound("/data")
        .bearer_auth(good_in)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = world
        .agent_call("document-service", "/documents", good_out)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        (world.app.count(), world.docs.count()),
        (apps + 1, docs + 1)
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Many hostile requests at once (a mix of the expensive ones: signature checks of
/// forged tokens, oversized and bomb tokens) do not wedge actbridge: every one is
/// refused, and good requests pass right after.
#[tokio::test]
async fn a_burst_of_hostile_requests_leaves_actbridge_serving() {
    let (world, issuer) = world().await;
    let world = Arc::new(world);
    let attacker = rsa_key();
    let kid = claims_of_header(&world.sts.sign(json!({})))["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let base = json!({
        "iss": world.sts.service.issuer(), "sub": "u", "aud": AGENT,
        "exp": now() + 300, "iat": now(),
    });
    let mut tokens = Vec::new();
    for i in 0..200 {
        let mut c = base.clone();
        c["n"] = json!(i);
        tokens.push(match i % 4 {
            // A forged signature under the issuer's kid: a full RSA verification each.
            0 => jws(
                json!({"alg": "RS256", "kid": kid}),
                &c,
                &attacker.key,
                Algorithm::RS256,
            ),
            // Unknown kids: at most one JWKS re-fetch per interval, not one per request.
            1 => jws(
                json!({"alg": "RS256", "kid": format!("kid-{i}")}),
                &c,
                &attacker.key,
                Algorithm::RS256,
            ),
            2 => format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(&serde_json::to_vec(&c).unwrap())
            ),
            _ => "A".repeat(9000),
        });
    }
    let mut tasks = Vec::new();
    for t in tokens {
        let w = world.clone();
        tasks.push(tokio::spawn(async move {
            w.inbound("/data")
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    assert_eq!(world.app.count(), 0);
    let good = jws(
        json!({"alg": "RS256", "kid": kid}),
        &json!({"iss": world.sts.service.issuer(), "sub": "u", "aud": AGENT, "exp": now() + 300}),
        &issuer.key,
        Algorithm::RS256,
    );
    let good_out = world.sts.alice_delegated().await;
    alive_and_serving(&world, &good, &good_out).await;
}

/// With the policy on, a path the policy and the upstream could read differently (a dot
/// segment, an encoded slash or dot, a bad escape), sent raw so that no client normalises
/// it first, is either normalised by Envoy (and then judged as normalised) or refused; it
/// never reaches the document it spells. A plain path still passes.
#[tokio::test]
async fn ambiguous_paths_are_refused_when_the_policy_judges_the_path() {
    let sts = Sts::start().await;
    let config = sidecar_config(&sts)
        + &format!(
            "policy:\n  dir: \"{}\"\n",
            crate::support::world::policies_dir().display()
        );
    let world = World::start_with(sts, &config).await;
    let token = world.sts.alice_delegated().await;
    let auth = auth_line(&format!("Bearer {token}"));
    let port = world.envoy.outbound_port;
    let send = |path: &str| {
        let mut req = head(To::Out, path, &[auth.as_slice()]);
        req.extend_from_slice(b"connection: close\r\n\r\n");
        async move { raw_http(port, &req).await }
    };
    // Envoy normalises `..` and `.` first (the document service then gets, and actbridge
    // judged, `/DOC-003` or `/documents/DOC-003`, which the policy refuses); actbridge
    // refuses the rest. Either way no spelling reaches DOC-003 under /documents/.
    for path in [
        "/documents/../DOC-003",
        "/documents/./DOC-003",
        "/documents/%2e%2e/DOC-003",
        "/documents%2FDOC-003",
        "/documents%5C..%5CDOC-003",
        "/documents/%ZZ",
        "/documents/%C0%AF",
        "/documents/DOC-001/..%2fDOC-003",
        "/documents/DOC-003;x",
        "/documents//DOC-003",
    ] {
        let before = world.docs.count();
        let answer = send(path).await;
        let status = answer.as_ref().map(|(s, _)| *s);
        assert!(
            matches!(status, Some(400 | 403)) || world.docs.count() == before + 1,
            "{path}: {answer:?}"
        );
        for seen in &world.docs.seen()[before..] {
            assert!(
                !seen.path.starts_with("/documents/") && !seen.path.contains(".."),
                "{path} reached the document service as {}",
                seen.path
            );
        }
    }
    let (status, body) = send("/documents/DOC-001").await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(world.docs.seen().last().unwrap().path, "/documents/DOC-001");
}
