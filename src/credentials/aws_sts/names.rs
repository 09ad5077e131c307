//! Names STS records for a session, within the alphabets STS accepts: the session name
//! and `SourceIdentity` (`[\w+=,.@-]`, 2–64 characters) and session tag values
//! (letters, digits, spaces and `_.:/=+-@`, up to 256 characters). CloudTrail shows
//! them; they attribute every S3 call to the user (issuer and subject) and the agent
//! chain, and never name two identities alike (`Grantee::credential_name`).

use crate::credentials::Grantee;

/// Longest session tag value.
const MAX_TAG_VALUE: usize = 256;

/// `<user>-via-<agent>+<digest>`, or `<user>-direct+<digest>` for the user's own token.
pub(super) fn session_name(who: &Grantee<'_>) -> String {
    who.credential_name()
}

/// The user (`<user>+<digest of issuer and subject>`), as `SourceIdentity`.
pub(super) fn source_identity(who: &Grantee<'_>) -> String {
    who.user_name()
}

/// Session tags: the user as shown, the issuer and subject that identify them, and each
/// agent of the chain, newest first.
pub(super) fn tags(who: &Grantee<'_>) -> Vec<(String, String)> {
    let mut tags = vec![
        ("actbridge-user".to_string(), tag_value(who.user)),
        ("actbridge-issuer".to_string(), tag_value(who.issuer)),
        ("actbridge-subject".to_string(), tag_value(who.subject)),
    ];
    for (i, agent) in who.chain.iter().enumerate() {
        tags.push((format!("actbridge-agent-{}", i + 1), tag_value(agent)));
    }
    tags
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

    fn grantee<'a>(user: &'a str, chain: &'a [String]) -> Grantee<'a> {
        Grantee {
            issuer: "https://keycloak.example.com/realms/demo",
            subject: "0b7e-alice",
            user,
            chain,
            grant: &[],
            exclude: &[],
        }
    }

    #[test]
    fn names_keep_to_the_sts_alphabet_and_length() {
        let chain = ["spiffe://x/agent/ü*".to_string()];
        for user in [
            "é smith/\u{7}".repeat(20),
            "a".into(),
            "bob@example.com".into(),
        ] {
            let who = grantee(&user, &chain);
            for n in [session_name(&who), source_identity(&who)] {
                assert!((2..=64).contains(&n.len()), "{n}");
                assert!(
                    n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)),
                    "{n}"
                );
            }
        }
        assert!(source_identity(&grantee("bob@example.com", &[])).starts_with("bob@example.com+"));
    }

    #[test]
    fn tags_name_the_user_the_issuer_the_subject_and_every_agent_newest_first() {
        let chain = [
            "spiffe://demo.example.com/agent/reviewer-ops".to_string(),
            "spiffe://demo.example.com/agent/reviewer-general".to_string(),
        ];
        assert_eq!(
            tags(&grantee("alice", &chain)),
            vec![
                ("actbridge-user".into(), "alice".into()),
                (
                    "actbridge-issuer".into(),
                    "https://keycloak.example.com/realms/demo".into()
                ),
                ("actbridge-subject".into(), "0b7e-alice".into()),
                ("actbridge-agent-1".into(), chain[0].clone()),
                ("actbridge-agent-2".into(), chain[1].clone()),
            ]
        );
        assert_eq!(tags(&grantee("a\"b", &[]))[0].1, "a-b");
    }
}
