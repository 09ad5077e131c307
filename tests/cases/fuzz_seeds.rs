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
            Decision::Continue(_) | Decision::ReadBody { .. } | Decision::Narrow { .. } => 0,
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
