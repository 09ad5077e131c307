use serde_json::json;

use super::claims::{MAX_NUMERIC_DATE, VerifiedToken};
use super::{Actor, VerifyError};
use crate::config::{ActorSource, ClientPattern};

mod token_class;

fn model(v: serde_json::Value, max: usize) -> Result<VerifiedToken, VerifyError> {
    VerifiedToken::from_claims(
        v.as_object().unwrap(),
        (&ActorSource::Act, max),
        "fp".into(),
    )
}

/// The model from an issuer whose actors come from `azp`, agents `spiffe://d/agent/*`.
fn model_from_azp(v: serde_json::Value) -> Result<VerifiedToken, VerifyError> {
    let agents = ActorSource::Azp(vec![
        ClientPattern::Prefix("spiffe://d/agent/".into()),
        ClientPattern::Exact("legacy-agent".into()),
    ]);
    VerifiedToken::from_claims(v.as_object().unwrap(), (&agents, 10), "fp".into())
}

#[test]
fn from_an_azp_issuer_the_agent_that_asked_is_the_one_actor() {
    let agent = |id: &str| Actor {
        sub: None,
        client_id: Some(id.into()),
    };
    let cases = [
        ("spiffe://d/agent/ops", vec![agent("spiffe://d/agent/ops")]),
        ("legacy-agent", vec![agent("legacy-agent")]),
        // A front end, or a client that merely starts like the exact one: a user's own.
        ("agent-portal", vec![]),
        ("legacy-agent-2", vec![]),
        ("spiffe://d/agents/ops", vec![]),
    ];
    for (azp, actors) in cases {
        let t = model_from_azp(json!({"iss": "i", "exp": 10, "sub": "alice", "azp": azp})).unwrap();
        assert_eq!(t.actors, actors, "azp {azp}");
        assert!(!t.actors_nest);
    }
    let t = model_from_azp(json!({"iss": "i", "exp": 10, "sub": "alice"})).unwrap();
    assert!(t.actors.is_empty(), "no azp, no actor");
    assert!(
        model(json!({"iss": "i", "exp": 10}), 10)
            .unwrap()
            .actors_nest
    );
}

#[test]
fn from_an_azp_issuer_an_act_claim_is_refused_whatever_it_says() {
    for act in [
        json!({"client_id": "spiffe://d/agent/ops"}),
        json!({"sub": "someone"}),
        json!("agent"),
    ] {
        let claims = json!({"iss": "i", "exp": 10, "azp": "spiffe://d/agent/ops", "act": act});
        assert_eq!(
            model_from_azp(claims).unwrap_err(),
            VerifyError::ActNotIssued,
            "{act}"
        );
    }
    // `act: null` is no claim.
    let claims = json!({"iss": "i", "exp": 10, "azp": "portal", "act": null});
    assert!(model_from_azp(claims).unwrap().actors.is_empty());
}

#[test]
fn nested_act_becomes_a_chain_newest_first() {
    let t = model(
        json!({
            "iss": "i", "exp": 10, "sub": "alice", "aud": "a", "groups": ["/engineering", "finance"],
            "act": {"sub": "sa-2", "client_id": "spiffe://d/agent/ops",
                    "act": {"client_id": "spiffe://d/agent/general"}}
        }),
        10,
    )
    .unwrap();
    assert_eq!(
        t.actors,
        vec![
            Actor {
                sub: Some("sa-2".into()),
                client_id: Some("spiffe://d/agent/ops".into())
            },
            Actor {
                sub: None,
                client_id: Some("spiffe://d/agent/general".into())
            },
        ]
    );
    assert_eq!(t.audiences, vec!["a".to_string()]);
    assert_eq!(
        t.groups,
        vec!["engineering".to_string(), "finance".to_string()]
    );
}

#[test]
fn a_chain_deeper_than_the_limit_is_refused_not_truncated() {
    let mut act = json!({"client_id": "last"});
    for i in 0..10 {
        act = json!({"client_id": format!("a{i}"), "act": act});
    }
    let claims = json!({"iss": "i", "exp": 10, "act": act});
    assert_eq!(
        model(claims.clone(), 10).unwrap_err(),
        VerifyError::ActorChainTooDeep(10)
    );
    assert_eq!(model(claims, 11).unwrap().actors.len(), 11);
}

#[test]
fn malformed_claims_are_refused() {
    assert_eq!(
        model(json!({"iss": "i", "exp": 10, "act": "agent"}), 10).unwrap_err(),
        VerifyError::InvalidClaim("act")
    );
    assert_eq!(
        model(json!({"iss": "i", "exp": 10, "act": {}}), 10).unwrap_err(),
        VerifyError::InvalidClaim("act")
    );
    assert_eq!(
        model(json!({"iss": "i", "exp": 10, "aud": 5}), 10).unwrap_err(),
        VerifyError::InvalidClaim("aud")
    );
    assert_eq!(
        model(json!({"iss": "i", "exp": "soon"}), 10).unwrap_err(),
        VerifyError::InvalidClaim("exp")
    );
    assert_eq!(
        model(json!({"iss": "i", "exp": 10, "sub": 1}), 10).unwrap_err(),
        VerifyError::InvalidClaim("sub")
    );
}

#[test]
fn segments_are_checked_before_anything_else() {
    use super::segments::peek;
    assert!(matches!(peek("a.b").err(), Some(VerifyError::Malformed(_))));
    assert!(matches!(
        peek("a.b.c.d").err(),
        Some(VerifyError::Malformed(_))
    ));
    assert!(matches!(
        peek("!!.e30.x").err(),
        Some(VerifyError::Malformed(_))
    ));
    let p = peek("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.").unwrap();
    assert_eq!(p.header.alg, "none");
    assert_eq!(p.iss.as_deref(), Some("x"));
}

#[test]
fn time_claims_are_whole_seconds_from_0_to_the_end_of_9999() {
    let max = MAX_NUMERIC_DATE;
    let range = VerifyError::TimeOutOfRange;
    for (claim, value, expected) in [
        ("exp", json!(0), Ok(())),
        ("exp", json!(max), Ok(())),
        ("exp", json!(max + 1), Err(range("exp"))),
        ("exp", json!(u64::MAX), Err(range("exp"))),
        ("exp", json!(-1), Err(VerifyError::InvalidClaim("exp"))),
        (
            "exp",
            json!(i64::MIN),
            Err(VerifyError::InvalidClaim("exp")),
        ),
        ("exp", json!(1.5), Err(VerifyError::InvalidClaim("exp"))),
        ("exp", json!(1e300), Err(VerifyError::InvalidClaim("exp"))),
        ("exp", json!("10"), Err(VerifyError::InvalidClaim("exp"))),
        ("exp", json!(null), Err(VerifyError::InvalidClaim("exp"))),
        ("iat", json!(null), Ok(())),
        ("iat", json!(max), Ok(())),
        ("iat", json!(max + 1), Err(range("iat"))),
        ("iat", json!(u64::MAX), Err(range("iat"))),
        ("iat", json!(-1), Err(VerifyError::InvalidClaim("iat"))),
        ("iat", json!(0.5), Err(VerifyError::InvalidClaim("iat"))),
        ("iat", json!(true), Err(VerifyError::InvalidClaim("iat"))),
        ("nbf", json!(null), Ok(())),
        ("nbf", json!(max), Ok(())),
        ("nbf", json!(max + 1), Err(range("nbf"))),
        ("nbf", json!(-1), Err(VerifyError::InvalidClaim("nbf"))),
        ("nbf", json!("0"), Err(VerifyError::InvalidClaim("nbf"))),
    ] {
        let mut claims = json!({"iss": "i", "exp": 10});
        claims[claim] = value.clone();
        assert_eq!(model(claims, 10).map(|_| ()), expected, "{claim}: {value}");
    }
    let t = model(json!({"iss": "i", "exp": max, "iat": max}), 10).unwrap();
    assert_eq!((t.expires_at, t.issued_at), (max, Some(max)));
}
