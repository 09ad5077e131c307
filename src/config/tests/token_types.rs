//! `issuers[].token_types`: defaults, overrides, and the errors that name their key.

use super::*;

fn with(section: &str) -> String {
    format!("{MINIMAL}    token_types:\n{section}")
}

fn key_of(yaml: &str) -> String {
    err(yaml).key().unwrap().to_string()
}

#[test]
fn token_types_default_to_access_tokens_and_take_overrides() {
    let c = Config::from_yaml(MINIMAL, &env()).unwrap();
    let t = &c.issuers[0].token_types;
    assert!(t.accepts_header("JWT") && t.accepts_header("application/at+jwt"));
    assert!(t.accepts_claim("Bearer") && !t.accepts_claim("ID"));
    let c = Config::from_yaml(
        &with("      header: [application/at+jwt]\n      claim: [Bearer, DPoP]\n"),
        &env(),
    )
    .unwrap();
    let t = &c.issuers[0].token_types;
    assert!(t.accepts_header("at+jwt") && !t.accepts_header("JWT"));
    assert!(t.accepts_claim("DPoP"));
    // One list set, the other keeps its default.
    let c = Config::from_yaml(&with("      claim: [Bearer]\n"), &env()).unwrap();
    assert!(c.issuers[0].token_types.accepts_header("JWT"));
}

#[test]
fn an_empty_or_unusable_token_type_list_is_an_error_naming_its_key() {
    for (section, key) in [
        ("      header: []\n", "issuers[0].token_types.header"),
        ("      claim: []\n", "issuers[0].token_types.claim"),
        (
            "      header: [JWT, \"\"]\n",
            "issuers[0].token_types.header[1]",
        ),
        (
            "      header: [\"at jwt\"]\n",
            "issuers[0].token_types.header[0]",
        ),
        (
            "      header: [a/b/c]\n",
            "issuers[0].token_types.header[0]",
        ),
        ("      header: [/jwt]\n", "issuers[0].token_types.header[0]"),
        (
            "      claim: [\"Bearer\\n\"]\n",
            "issuers[0].token_types.claim[0]",
        ),
    ] {
        assert_eq!(key_of(&with(section)), key, "{section}");
    }
    let e = err(&with("      header: []\n")).to_string();
    assert!(e.contains("must not be empty"), "{e}");
    assert!(
        key_of(&with("      payload: [Bearer]\n")).starts_with("issuers[0].token_types"),
        "an unknown key is refused"
    );
}
