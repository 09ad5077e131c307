//! `issuers[].actors_from` and `agent_clients`: the default, the `azp` form, and the
//! errors that name their key.

use super::*;

fn with(lines: &str) -> String {
    format!("{MINIMAL}{lines}")
}

#[test]
fn actors_come_from_act_unless_an_issuer_says_azp() {
    let c = Config::from_yaml(MINIMAL, &env()).unwrap();
    assert_eq!(c.issuers[0].actors, ActorSource::Act);
    let c = Config::from_yaml(
        &with("    actors_from: azp\n    agent_clients: ['spiffe://d/agent/*', legacy]\n"),
        &env(),
    )
    .unwrap();
    assert_eq!(
        c.issuers[0].actors,
        ActorSource::Azp(vec![
            ClientPattern::Prefix("spiffe://d/agent/".into()),
            ClientPattern::Exact("legacy".into()),
        ])
    );
}

#[test]
fn agent_clients_are_required_with_azp_refused_without_and_never_match_everything() {
    for (lines, key, says) in [
        (
            "    actors_from: azp\n",
            "issuers[0].agent_clients",
            "required",
        ),
        (
            "    agent_clients: [a]\n",
            "issuers[0].agent_clients",
            "only means something",
        ),
        (
            "    actors_from: azp\n    agent_clients: ['*']\n",
            "issuers[0].agent_clients[0]",
            "every client",
        ),
        (
            "    actors_from: azp\n    agent_clients: [a, 'spiffe://*/agent']\n",
            "issuers[0].agent_clients[1]",
            "may only end",
        ),
        (
            "    actors_from: azp\n    agent_clients: ['a**']\n",
            "issuers[0].agent_clients[0]",
            "may only end",
        ),
        (
            "    actors_from: azp\n    agent_clients: [' ']\n",
            "issuers[0].agent_clients[0]",
            "empty",
        ),
    ] {
        let e = err(&with(lines));
        assert_eq!(e.key(), Some(key), "{lines}");
        assert!(e.to_string().contains(says), "{lines}: {e}");
    }
    let e = err(&with("    actors_from: sub\n")).to_string();
    assert!(e.contains("act") && e.contains("azp"), "{e}");
}
