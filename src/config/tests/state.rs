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
    assert_eq!(r.url.expose().as_str(), "redis://cache:6380/2");
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
    assert_eq!(r.url.expose().as_str(), "rediss://actbridge:s3cret@cache/0");
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
            "    url: redis://mymaster:6379/0\n    sentinels: ['s1:26379']\n",
            "state.redis.url",
            "master's name",
        ),
        (
            "    url: redis://mymaster/0\n    sentinels: []\n",
            "state.redis.sentinels",
            "at least one",
        ),
        (
            "    url: redis://mymaster/0\n    sentinels: ['s1']\n",
            "state.redis.sentinels[0]",
            "HOST:PORT",
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

#[test]
fn with_sentinels_the_url_names_the_master() {
    let c = Config::from_yaml(
        &with(
            "    url: redis://mymaster/2\n    sentinels: ['10.0.0.1:26379', 'sentinel-b:26380']\n",
        ),
        &env(),
    )
    .unwrap();
    let s = c.redis.unwrap().sentinel.unwrap();
    assert_eq!(s.master, "mymaster");
    assert_eq!(
        s.sentinels,
        ["redis://10.0.0.1:26379", "redis://sentinel-b:26380"]
    );
}
