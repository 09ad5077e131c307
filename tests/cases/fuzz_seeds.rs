//! Every committed fuzz seed (`fuzz/corpus/<target>/*`, crashes found by `make fuzz`
//! included once they are fixed) replayed through the fuzz targets' own entry points
//! (`fuzz/harness.rs`): a normal `cargo test` catches a regression without cargo-fuzz.

#[path = "../../fuzz/harness.rs"]
mod harness;

#[test]
fn every_committed_fuzz_seed_runs_clean_through_its_target() {
    let corpus = harness::repo_root().join("fuzz/corpus");
    let mut replayed = 0;
    for (target, run) in harness::TARGETS {
        let dir = corpus.join(target);
        let mut seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for seed in seeds {
            let data = std::fs::read(&seed).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: seed {} fails", seed.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} fuzz seeds");
}

/// The `request` target reaches the whole decision: with the valid token a request goes
/// on both ways (verified, judged by the policy, exchanged outbound), without it it is
/// refused — so the fuzzer explores past the first check.
#[test]
fn the_request_target_reaches_verification_policy_and_exchange() {
    use actbridge::pipeline::Decision;
    let status = |seed: &str| {
        let data =
            std::fs::read(harness::repo_root().join("fuzz/corpus/request").join(seed)).unwrap();
        match harness::decide(&data).expect("a request") {
            Decision::Continue(_)
            | Decision::ReadBody { .. }
            | Decision::Watch { .. }
            | Decision::Narrow { .. } => 0,
            Decision::Deny(d) => d.status,
            Decision::Respond(r) => r.status,
        }
    };
    assert_eq!(status("in-good"), 0);
    assert_eq!(status("out-good"), 0);
    assert_eq!(status("in-forged-identity"), 0);
    assert_eq!(status("in-basic"), 401);
    assert_eq!(status("out-two-auth"), 401);
    assert_eq!(status("out-blocked"), 403);
    assert_eq!(status("out-dot-segment"), 400);
}

/// The `peer` target reaches each parser and its bounds: the good answer of each peer is
/// accepted, the garbage seeds (the `expires_in` of 5·10¹⁸ that used to panic the
/// exchanger, STS and GitHub times out of range, huge introspection `exp`) are typed
/// errors — so the fuzzer explores past the first check, and the seeds stay meaningful.
#[test]
// Long by design: a table, one row per peer answer.
fn the_peer_target_accepts_each_good_answer_and_refuses_the_out_of_bound_ones() {
    use std::time::{Duration, UNIX_EPOCH};

    use actbridge::credentials::{parse_github_token_response, parse_sts_expiration};
    use actbridge::exchange::parse_token_response;
    use actbridge::introspect::parse_introspection_response;
    use actbridge::jwt::{JwksStore, VerifiedToken};

    let seed = |name: &str| {
        let data = std::fs::read(harness::repo_root().join("fuzz/corpus/peer").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        data[1..].to_vec()
    };
    let now = harness::PEER_NOW;
    let at = UNIX_EPOCH + Duration::from_secs(now);
    let token = |name: &str| parse_token_response(200, &seed(name), now).map(|_| ());
    assert_eq!(token("token-ok"), Ok(()));
    assert_eq!(token("token-no-expires-in"), Ok(()));
    for bad in [
        "token-expires-in-5e18",
        "token-expires-in-u64-max",
        "token-expires-in-over-u64",
        "token-expires-in-negative",
        "token-expires-in-float",
        "token-expires-in-1e300",
        "token-expires-in-zero",
        "token-expires-in-string",
        "token-expires-in-one-year-and-a-second",
    ] {
        let e = token(bad).unwrap_err();
        assert_eq!(e.reason(), "sts_invalid_response", "{bad}: {e}");
    }
    let verified = VerifiedToken {
        issuer: harness::ISSUER.into(),
        subject: Some("alice-id".into()),
        username: None,
        audiences: Vec::new(),
        authorized_party: None,
        scopes: Vec::new(),
        groups: Vec::new(),
        roles: Vec::new(),
        expires_at: now + 300,
        issued_at: None,
        token_id: None,
        actors: Vec::new(),
        actors_nest: true,
        fingerprint: String::new(),
    };
    let introspect = |name: &str| parse_introspection_response(200, &seed(name), &verified, now);
    assert_eq!(introspect("introspect-ok"), Ok(Duration::from_secs(200)));
    assert_eq!(
        introspect("introspect-exp-u64-max"),
        Ok(Duration::from_secs(300))
    );
    for bad in [
        "introspect-exp-1e300",
        "introspect-exp-over-u64",
        "introspect-exp-negative",
        "introspect-iat-float",
    ] {
        assert!(
            matches!(
                introspect(bad),
                Err(actbridge::introspect::IntrospectError::InvalidResponse(_))
            ),
            "{bad}"
        );
    }
    assert_eq!(
        JwksStore::parse_jwks_document(&seed("jwks-issuer-key")),
        Ok(1)
    );
    assert!(JwksStore::parse_discovery_document(&seed("discovery-ok"), harness::ISSUER).is_ok());
    assert!(
        JwksStore::parse_discovery_document(&seed("discovery-other-issuer"), harness::ISSUER)
            .is_err()
    );
    let sts = |name: &str| parse_sts_expiration(std::str::from_utf8(&seed(name)).unwrap(), at);
    assert_eq!(sts("sts-expiration-ok"), Ok(Duration::from_secs(3600)));
    for bad in [
        "sts-expiration-year-9999",
        "sts-expiration-year-99999",
        "sts-expiration-13-hours",
        "sts-expiration-past",
        "sts-expiration-garbage",
    ] {
        assert!(sts(bad).is_err(), "{bad}");
    }
    let repositories = ["docs".to_string()];
    let permissions =
        std::collections::BTreeMap::from([("contents".to_string(), "read".to_string())]);
    let github =
        |name: &str| parse_github_token_response(201, &seed(name), &repositories, &permissions, at);
    assert_eq!(github("github-ok"), Ok(Duration::from_secs(3600)));
    for bad in [
        "github-expires-year-99999",
        "github-expires-year-9999",
        "github-expires-garbage",
        "github-expires-number",
        "github-expires-past",
        "github-permission-admin",
        "github-selection-all",
    ] {
        assert!(github(bad).is_err(), "{bad}");
    }
}
