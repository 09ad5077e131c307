//! The `credentials` section and the routes that use it.

use super::{env, err, outbound};
use crate::config::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/actbridge-documents";

fn with_s3(credential: &str, routes: &str) -> String {
    format!(
        "{}credentials:\n{credential}policy: {{dir: policies}}\n",
        outbound(&format!("  routes:\n{routes}"))
    )
}

fn s3(extra: &str) -> String {
    format!(
        "  - name: docs\n    aws_sts: {{role_arn: '{ROLE}', region: us-east-1, bucket: zt-demo-documents{extra}}}\n"
    )
}

const SIGN: &str = "    - {host: 's3.*', action: credential, credential: docs, mode: sign}\n";

#[test]
fn an_aws_credential_gets_safe_defaults() {
    let c = Config::from_yaml(&with_s3(&s3(""), SIGN), &env()).unwrap();
    let BackendConfig::AwsSts(a) = &c.credentials[0].backend;
    assert_eq!(a.duration, std::time::Duration::from_secs(900));
    assert_eq!(a.timeout, std::time::Duration::from_secs(2));
    assert_eq!(a.prefixes, PrefixMapping::Template("{grant}/".into()));
    assert!(a.session_tags);
    assert!(a.public_prefixes.is_empty());
    assert_eq!(a.sts_endpoint, None);
    assert!(matches!(
        &c.outbound.unwrap().routes[0].action,
        RouteAction::Credential { credential, mode: CredentialMode::Sign, rules }
            if credential == "docs" && *rules == TokenRules::default()
    ));
}

#[test]
fn bad_aws_settings_name_their_key() {
    for (extra, key) in [
        (", duration: 5m", "credentials[0].aws_sts.duration"),
        (", duration: 13h", "credentials[0].aws_sts.duration"),
        (", timeout: 0s", "credentials[0].aws_sts.timeout"),
        (
            ", prefix_template: 'x/'",
            "credentials[0].aws_sts.prefix_template",
        ),
        (
            ", prefix_template: '{grant}/*'",
            "credentials[0].aws_sts.prefix_template",
        ),
        (
            ", prefixes: {hr: ['hr']}",
            "credentials[0].aws_sts.prefixes.hr[0]",
        ),
        (
            ", prefixes: {hr: ['../hr/']}",
            "credentials[0].aws_sts.prefixes.hr[0]",
        ),
        (
            ", public_prefixes: ['*']",
            "credentials[0].aws_sts.public_prefixes[0]",
        ),
        (
            ", sts_endpoint: 'ftp://x'",
            "credentials[0].aws_sts.sts_endpoint",
        ),
        (", cache_entries: 0", "credentials[0].aws_sts.cache_entries"),
        (", session_tag: true", "credentials[0].aws_sts"),
    ] {
        let e = err(&with_s3(&s3(extra), SIGN));
        assert_eq!(
            e.key().map(|k| k.starts_with(key)),
            Some(true),
            "{extra}: {e}"
        );
    }
    let bad_role = with_s3(&s3("").replace(ROLE, "arn:aws:iam::12:user/x"), SIGN);
    assert_eq!(
        err(&bad_role).key(),
        Some("credentials[0].aws_sts.role_arn")
    );
    let bad_bucket = with_s3(&s3("").replace("zt-demo-documents", "Docs_Bucket"), SIGN);
    assert_eq!(
        err(&bad_bucket).key(),
        Some("credentials[0].aws_sts.bucket")
    );
    let no_backend = with_s3("  - name: docs\n", SIGN);
    assert_eq!(err(&no_backend).key(), Some("credentials[0]"));
    let twice = with_s3(&(s3("") + &s3("")), SIGN);
    assert_eq!(err(&twice).key(), Some("credentials[1].name"));
}

#[test]
fn routes_must_name_a_known_credential_and_a_mode() {
    for (route, key) in [
        (
            "    - {host: 's3.*', action: credential, credential: nope, mode: sign}\n",
            "outbound.routes[0].credential",
        ),
        (
            "    - {host: 's3.*', action: credential, credential: docs}\n",
            "outbound.routes[0].mode",
        ),
        (
            "    - {host: 's3.*', action: credential, credential: docs, mode: inject}\n",
            "outbound.routes[0].mode",
        ),
        (
            "    - {host: 's3.*', action: exchange, audience: a, credential: docs}\n",
            "outbound.routes[0].credential",
        ),
        (
            "    - {host: 'c', action: vend}\n",
            "outbound.routes[0].services",
        ),
        (
            "    - {host: 'c', action: vend, services: {s3: nope}}\n",
            "outbound.routes[0].services.s3",
        ),
        (
            "    - {host: 'c', action: passthrough, services: {s3: docs}}\n",
            "outbound.routes[0].services",
        ),
    ] {
        let e = err(&with_s3(&s3(""), route));
        assert_eq!(e.key(), Some(key), "{route}: {e}");
    }
}

#[test]
fn credential_routes_need_a_policy() {
    let yaml = with_s3(&s3(""), SIGN).replace("policy: {dir: policies}\n", "");
    let e = err(&yaml);
    assert_eq!(e.key(), Some("outbound.routes[0].action"), "{e}");
    assert!(e.to_string().contains("policy"), "{e}");
}
