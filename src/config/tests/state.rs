//! `state.redis`: the defaults, the password from a file or the environment (never
//! printed), and the errors that name their key.

use super::*;

fn with(section: &str) -> String {
    format!("{MINIMAL}state:\n  redis:\n{section}")
}

#[test]
fn without_state_every_store_is_in_memory_with_it_redis_is_shared() {
    assert!(Config::from_yaml(MINIMAL, &env()).unwrap().redis.is_none());
    let c = Config::from_yaml(&with("    url: redis://cache:6380/2\n"), &env()).unwrap();
    let r = c.redis.unwrap();
    assert_eq!(r.url.expose(), "redis://cache:6380/2");
    assert_eq!(
        (r.timeout, r.key_prefix.as_str()),
        (Duration::from_millis(250), "actbridge:")
    );
    // The password goes into the URL the client uses, never into what is printed.
    let c = Config::from_yaml(
        &with(
            "    url: rediss://cache/0\n    username: actbridge\n    password_env: CLIENT_SECRET\n",
        ),
        &env(),
    )
    .unwrap();
    let r = c.redis.unwrap();
    assert_eq!(r.url.expose(), "rediss://actbridge:s3cret@cache/0");
    assert_eq!(r.display_url, "rediss://cache/0");
    assert!(!format!("{r:?}").contains("s3cret"));
}

#[test]
fn a_wrong_redis_setting_is_refused_naming_its_key() {
    for (section, key, says) in [
        ("    url: http://cache\n", "state.redis.url", "redis://"),
        (
            "    url: redis://u:p@cache\n",
            "state.redis.url",
            "credentials",
        ),
        ("    url: 'not a url'\n", "state.redis.url", "not a URL"),
        (
            "    url: redis://cache\n    password_env: A\n    password_file: /x\n",
            "state.redis.password_file",
            "at most one",
        ),
        (
            "    url: redis://cache\n    password_env: NOPE\n",
            "state.redis.password_env",
            "not set",
        ),
        (
            "    url: redis://cache\n    username: u\n",
            "state.redis.username",
            "needs",
        ),
        (
            "    url: redis://cache\n    timeout: 0s\n",
            "state.redis.timeout",
            "greater than zero",
        ),
        (
            "    url: redis://cache\n    sync_interval: 50ms\n",
            "state.redis.sync_interval",
            "at least 100ms",
        ),
        (
            "    url: redis://cache\n    ca_file: /etc/hosts\n",
            "state.redis.ca_file",
            "rediss://",
        ),
        (
            "    url: rediss://cache\n    ca_file: /nonexistent/ca.pem\n",
            "state.redis.ca_file",
            "cannot read",
        ),
        (
            "    url: rediss://cache\n    cert_file: /etc/hosts\n",
            "state.redis.key_file",
            "needed with cert_file",
        ),
        (
            "    url: redis://cache\n    key_prefix: 'a b'\n",
            "state.redis.key_prefix",
            "whitespace",
        ),
    ] {
        let e = err(&with(section));
        assert_eq!(e.key(), Some(key), "{section}");
        assert!(e.to_string().contains(says), "{section}: {e}");
    }
}
