//! Names STS records for a session, sanitised to the alphabets STS accepts: the
//! session name and `SourceIdentity` (`[\w+=,.@-]`, 2–64 characters) and session tag
//! values (letters, digits, spaces and `_.:/=+-@`, up to 256 characters). CloudTrail
//! shows them; they attribute every S3 call to the user and the agent chain.

/// Longest `RoleSessionName` and `SourceIdentity`.
const MAX_NAME: usize = 64;
/// Longest session tag value.
const MAX_TAG_VALUE: usize = 256;

/// `<user>-via-<agent>` (the newest agent's last path segment, e.g. `summarizer-tech`),
/// or `<user>-direct` for the user's own token.
pub(super) fn session_name(user: &str, chain: &[String]) -> String {
    name(&crate::credentials::user_via_agent(user, chain))
}

/// The user, as `SourceIdentity`.
pub(super) fn source_identity(user: &str) -> String {
    name(user)
}

/// Session tags: the user and each agent of the chain, newest first.
pub(super) fn tags(user: &str, chain: &[String]) -> Vec<(String, String)> {
    let mut tags = vec![("actbridge-user".to_string(), tag_value(user))];
    for (i, agent) in chain.iter().enumerate() {
        tags.push((format!("actbridge-agent-{}", i + 1), tag_value(agent)));
    }
    tags
}

fn name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME)
        .collect();
    while s.len() < 2 {
        s.push('-');
    }
    s
}

fn tag_value(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_TAG_VALUE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_read_as_user_via_agent() {
        let chain = ["spiffe://demo.example.com/agent/summarizer-tech".to_string()];
        assert_eq!(session_name("alice", &chain), "alice-via-summarizer-tech");
        assert_eq!(session_name("alice", &[]), "alice-direct");
        assert_eq!(session_name("a", &[]), "a-direct");
    }

    #[test]
    fn names_keep_to_the_sts_alphabet_and_length() {
        let chain = ["spiffe://x/agent/ü*".to_string()];
        let n = session_name(&"é smith/\u{7}".repeat(20), &chain);
        assert!(n.len() <= 64, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
            "{n}"
        );
        assert_eq!(source_identity("x"), "x-");
        assert_eq!(source_identity("bob@example.com"), "bob@example.com");
    }

    #[test]
    fn tags_name_the_user_and_every_agent_newest_first() {
        let chain = [
            "spiffe://demo.example.com/agent/reviewer-ops".to_string(),
            "spiffe://demo.example.com/agent/reviewer-general".to_string(),
        ];
        assert_eq!(
            tags("alice", &chain),
            vec![
                ("actbridge-user".into(), "alice".into()),
                ("actbridge-agent-1".into(), chain[0].clone()),
                ("actbridge-agent-2".into(), chain[1].clone()),
            ]
        );
        assert_eq!(tags("a\"b", &[])[0].1, "a-b");
    }
}
