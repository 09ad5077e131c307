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

const SIGN: &str =
    "    - {host: 's3.example', cluster: s3, action: credential, credential: docs, mode: sign}\n";

#[test]
fn an_aws_credential_gets_safe_defaults() {
    let c = Config::from_yaml(&with_s3(&s3(""), SIGN), &env()).unwrap();
    let BackendConfig::AwsSts(a) = &c.credentials[0].backend else {
        panic!("aws_sts expected")
    };
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
            "    - {host: 's3.example', cluster: s3, action: credential, credential: nope, mode: sign}\n",
            "outbound.routes[0].credential",
        ),
        (
            "    - {host: 's3.example', cluster: s3, action: credential, credential: docs}\n",
            "outbound.routes[0].mode",
        ),
        (
            "    - {host: 's3.example', cluster: s3, action: credential, credential: docs, mode: inject}\n",
            "outbound.routes[0].mode",
        ),
        (
            "    - {host: 's3.example', cluster: s3, action: exchange, audience: a, credential: docs}\n",
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

fn github_key_file() -> tempfile::NamedTempFile {
    let pem = actbridge_sts::pem::fresh_rsa_private_key().unwrap();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), pem).unwrap();
    f
}

/// A `github_app` credential named `gh`, with `field: value` replacing (or adding) one
/// field of a valid entry.
fn github(key: &std::path::Path, field: &str, value: &str) -> String {
    let mut fields = vec![
        ("app_id", "1".to_string()),
        ("installation_id", "2".to_string()),
        ("private_key_file", format!("'{}'", key.display())),
        ("owner", "demo-org".to_string()),
        ("repositories", "{finance: [finance-reports]}".to_string()),
    ];
    match fields.iter_mut().find(|(k, _)| *k == field) {
        Some(f) => f.1 = value.to_string(),
        None if !field.is_empty() => fields.push((field, value.to_string())),
        None => {}
    }
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("  - name: gh\n    github_app: {{{}}}\n", body.join(", "))
}

const INJECT: &str = "    - {host: 'api.github.com', cluster: github, action: credential, credential: gh, mode: inject}\n";

#[test]
fn a_github_app_credential_gets_safe_defaults_and_names_bad_keys() {
    let key = github_key_file();
    let c = Config::from_yaml(&with_s3(&github(key.path(), "", ""), INJECT), &env()).unwrap();
    let BackendConfig::GithubApp(g) = &c.credentials[0].backend else {
        panic!("github_app expected")
    };
    assert_eq!(g.api_url.as_str(), "https://api.github.com/");
    assert_eq!(
        g.permissions.get("contents").map(String::as_str),
        Some("read")
    );
    assert_eq!(g.timeout, std::time::Duration::from_secs(2));
    for (field, value, k) in [
        ("owner", "'a/b'", "credentials[0].github_app.owner"),
        (
            "repositories",
            "{hr: ['../x']}",
            "credentials[0].github_app.repositories.hr[0]",
        ),
        (
            "permissions",
            "{contents: admin}",
            "credentials[0].github_app.permissions.contents",
        ),
        (
            "api_url",
            "'file:///x'",
            "credentials[0].github_app.api_url",
        ),
        ("app_id", "0", "credentials[0].github_app.app_id"),
        (
            "private_key_file",
            "/nonexistent.pem",
            "credentials[0].github_app.private_key_file",
        ),
    ] {
        let e = err(&with_s3(&github(key.path(), field, value), INJECT));
        assert_eq!(e.key(), Some(k), "{field}: {e}");
    }
}

#[test]
fn a_credential_is_applied_in_its_backends_mode() {
    let key = github_key_file();
    let sign_github = INJECT.replace("inject", "sign");
    let e = err(&with_s3(&github(key.path(), "", ""), &sign_github));
    assert_eq!(e.key(), Some("outbound.routes[0].mode"), "{e}");
    let inject_s3 = SIGN.replace("sign", "inject");
    let e = err(&with_s3(&s3(""), &inject_s3));
    assert_eq!(e.key(), Some("outbound.routes[0].mode"), "{e}");
}

#[test]
fn an_ssh_cert_credential_is_vend_only_and_names_bad_keys() {
    let ca =
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        ca.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes(),
    )
    .unwrap();
    let entry = |extra: &str| {
        format!(
            "  - name: ssh\n    ssh_cert: {{ca_key_file: '{}', principals: {{finance: [finance]}}{extra}}}\n",
            f.path().display()
        )
    };
    let vend = "    - {host: 'c', action: vend, services: {ssh: ssh}}\n";
    let c = Config::from_yaml(&with_s3(&entry(""), vend), &env()).unwrap();
    let BackendConfig::SshCert(s) = &c.credentials[0].backend else {
        panic!("ssh_cert expected")
    };
    assert_eq!(s.validity, std::time::Duration::from_secs(300));
    assert_eq!(s.extensions, ["permit-pty"]);
    for (extra, key) in [
        (", validity: 2d", "credentials[0].ssh_cert.validity"),
        (
            ", extensions: [permit-everything]",
            "credentials[0].ssh_cert.extensions[0]",
        ),
        (
            ", principals: {hr: ['a b']}",
            "credentials[0].ssh_cert.principals.hr[0]",
        ),
    ] {
        let yaml = with_s3(&entry(extra), vend);
        let yaml = if extra.contains("principals") {
            yaml.replace(", principals: {finance: [finance]}", "")
        } else {
            yaml
        };
        assert_eq!(err(&yaml).key(), Some(key), "{extra}");
    }
    let sign = "    - {host: 's', cluster: s, action: credential, credential: ssh, mode: sign}\n";
    assert_eq!(
        err(&with_s3(&entry(""), sign)).key(),
        Some("outbound.routes[0].mode")
    );
}

#[test]
fn a_postgres_credential_reads_its_password_from_the_environment_and_names_bad_keys() {
    let entry = |extra: &str| {
        format!(
            "  - name: db\n    postgres: {{host: 127.0.0.1, database: docs, admin_user: admin, admin_password_env: CLIENT_SECRET, roles: {{finance: [finance_reader]}}{extra}}}\n"
        )
    };
    let vend = "    - {host: 'c', action: vend, services: {postgres: db}}\n";
    let c = Config::from_yaml(&with_s3(&entry(""), vend), &env()).unwrap();
    let BackendConfig::Postgres(p) = &c.credentials[0].backend else {
        panic!("postgres expected")
    };
    assert_eq!(p.admin_password.expose().as_str(), "s3cret");
    assert_eq!((p.port, p.connection_limit), (5432, 2));
    assert_eq!(p.role_prefix, "actbridge_");
    assert_eq!(p.ttl, std::time::Duration::from_secs(900));
    assert_eq!(
        p.timeout,
        std::time::Duration::from_secs(2),
        "inside Envoy's 3 s ext_proc message_timeout"
    );
    assert_eq!(p.name, "db");
    for (extra, key) in [
        (
            ", roles: {hr: ['a;b']}",
            "credentials[0].postgres.roles.hr[0]",
        ),
        (
            ", role_prefix: 'x y'",
            "credentials[0].postgres.role_prefix",
        ),
        (", ttl: 0s", "credentials[0].postgres.ttl"),
        (
            ", connection_limit: 0",
            "credentials[0].postgres.connection_limit",
        ),
        (", admin_password_file: /x", "credentials[0].postgres"),
    ] {
        let yaml = with_s3(&entry(extra), vend);
        let yaml = if extra.contains("roles") {
            yaml.replacen(", roles: {finance: [finance_reader]}", "", 1)
        } else {
            yaml
        };
        assert_eq!(err(&yaml).key(), Some(key), "{extra}");
    }
    let missing = with_s3(&entry("").replace("CLIENT_SECRET", "NOT_SET"), vend);
    assert_eq!(
        err(&missing).key(),
        Some("credentials[0].postgres.admin_password_env")
    );
}

#[test]
fn a_filter_credential_needs_rules_and_names_bad_keys() {
    let entry = |rules: &str| {
        format!("  - name: chat\n    filter: {{token_env: CLIENT_SECRET, rules: [{rules}]}}\n")
    };
    let good = "{method: POST, path: /api/chat.postMessage, body_field: channel, allow: {finance: [finance-general]}}";
    let route =
        "    - {host: 'chat', cluster: chat, action: credential, credential: chat, mode: filter}\n";
    let c = Config::from_yaml(&with_s3(&entry(good), route), &env()).unwrap();
    let BackendConfig::Filter(f) = &c.credentials[0].backend else {
        panic!("filter expected")
    };
    assert_eq!(f.rules[0].value_at, ValueAt::BodyField("channel".into()));
    assert_eq!(f.max_body_bytes, 65536);
    for (rule, key) in [
        (
            good.replace("POST", "post"),
            "credentials[0].filter.rules[0].method",
        ),
        (
            good.replace("/api/chat.postMessage", "api?x"),
            "credentials[0].filter.rules[0].path",
        ),
        (
            good.replace("body_field: channel", "body_field: channel, query: c"),
            "credentials[0].filter.rules[0]",
        ),
        (
            good.replace("{finance: [finance-general]}", "{}"),
            "credentials[0].filter.rules[0].allow",
        ),
    ] {
        assert_eq!(
            err(&with_s3(&entry(&rule), route)).key(),
            Some(key),
            "{rule}"
        );
    }
    assert_eq!(
        err(&with_s3(&entry(""), route)).key(),
        Some("credentials[0].filter.rules")
    );
    let vend = "    - {host: 'c', action: vend, services: {chat: chat}}\n";
    // A filter's token is never vended, and never applied in another mode.
    assert_eq!(
        err(&with_s3(&entry(good), vend)).key(),
        Some("outbound.routes[0].services.chat")
    );
    let sign = route.replace("filter}", "sign}");
    assert_eq!(
        err(&with_s3(&entry(good), &sign)).key(),
        Some("outbound.routes[0].mode")
    );
}
