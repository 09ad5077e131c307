//! `rate_limits`: a rate written as people write it becomes one request per interval,
//! the burst defaults to the rate's count, and every mistake names its key.

use super::*;
use crate::config::{Dimension, OnUnavailable};

const OUTBOUND: &str = r#"outbound:
  token_endpoint: http://127.0.0.1:8180/realms/demo/protocol/openid-connect/token
  client: {client_id: agent, auth: {method: client_secret_post, secret_env: CLIENT_SECRET}}
  routes:
    - {name: docs, host: docs, cluster: docs, action: exchange, audience: docs}
"#;

fn with(limits: &str) -> String {
    format!("{MINIMAL}{OUTBOUND}rate_limits:\n{limits}")
}

#[test]
fn a_rate_is_an_interval_and_a_burst() {
    let c = Config::from_yaml(
        &with("  limits:\n    - {name: per-user, per: [user, agent, route], rate: 30/minute, routes: [docs, inbound]}\n    - {name: tools, per: [tool], rate: 5/10s, burst: 1}\n"),
        &env(),
    )
    .unwrap();
    let r = c.rate_limits.unwrap();
    assert_eq!(r.on_unavailable, OnUnavailable::Refuse);
    assert_eq!(
        (r.limits[0].interval, r.limits[0].burst),
        (Duration::from_secs(2), 30)
    );
    assert_eq!(
        r.limits[0].per,
        [Dimension::User, Dimension::Agent, Dimension::Route]
    );
    assert_eq!(
        (r.limits[1].interval, r.limits[1].burst),
        (Duration::from_secs(2), 1)
    );
    assert!(r.limits[1].routes.is_none());
}

#[test]
fn a_wrong_limit_is_refused_naming_its_key() {
    for (limits, key, says) in [
        ("  limits: []\n", "rate_limits.limits", "at least one"),
        (
            "  limits: [{name: 'a b', per: [user], rate: 1/s}]\n",
            "rate_limits.limits[0].name",
            "letters",
        ),
        (
            "  limits: [{name: a, per: [], rate: 1/s}]\n",
            "rate_limits.limits[0].per",
            "at least one",
        ),
        (
            "  limits: [{name: a, per: [user, user], rate: 1/s}]\n",
            "rate_limits.limits[0].per",
            "twice",
        ),
        (
            "  limits: [{name: a, per: [user], rate: lots}]\n",
            "rate_limits.limits[0].rate",
            "N/minute",
        ),
        (
            "  limits: [{name: a, per: [user], rate: 0/s}]\n",
            "rate_limits.limits[0].rate",
            "refuses everything",
        ),
        (
            "  limits: [{name: a, per: [user], rate: 1/s, burst: 0}]\n",
            "rate_limits.limits[0].burst",
            "at least 1",
        ),
        (
            "  limits: [{name: a, per: [user], rate: 1/s, routes: [nowhere]}]\n",
            "rate_limits.limits[0].routes",
            "nowhere",
        ),
        (
            "  limits: [{name: a, per: [user], rate: 1/s}, {name: a, per: [tool], rate: 1/s}]\n",
            "rate_limits.limits[1].name",
            "another limit",
        ),
    ] {
        let e = err(&with(limits));
        assert_eq!(e.key(), Some(key), "{limits}");
        assert!(e.to_string().contains(says), "{limits}: {e}");
    }
    // A part that is none of the four is a parse error at its key.
    let e = err(&with("  limits: [{name: a, per: [tenant], rate: 1/s}]\n"));
    assert!(e.to_string().contains("rate_limits.limits[0].per"), "{e}");
}
