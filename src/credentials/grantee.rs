//! Who a credential is for, and the one name every backend gives it.
//!
//! A person is (`iss`, `sub`): two trusted issuers may each have an `alice`, and a
//! `preferred_username` is only a label. Every cache of minted credentials is keyed on
//! [`Grantee::identity`] (issuer, subject and the agent chain), and every name a
//! credential carries where others read it (the AWS session name and `SourceIdentity`,
//! the SSH key id, the audit record) is [`Grantee::credential_name`]: readable, within
//! the alphabet the peer accepts, and different for different identities.

use sha2::{Digest, Sha256};

/// Who a credential is for.
#[derive(Debug, Clone, Copy)]
pub struct Grantee<'a> {
    /// `iss` of the token the request was judged on.
    pub issuer: &'a str,
    /// `sub` of that token: with `issuer`, the person.
    pub subject: &'a str,
    /// How the user is shown (`preferred_username`, else `sub`): a label, not a key.
    pub user: &'a str,
    /// The delegation chain the destination sees: client ids, newest first.
    pub chain: &'a [String],
    /// The policy's grant (non-empty, sorted).
    pub grant: &'a [String],
    /// Resources inside the grant that this request must not reach (policy `exclude`).
    pub exclude: &'a [String],
}

/// Hex digits of the identity digest a credential name ends with (64 bits).
const SUFFIX_HEX: usize = 16;

/// Longest credential name: AWS's limit for a session name and `SourceIdentity`; the SSH
/// key id and the audit record use the same name.
pub(super) const NAME_MAX: usize = 64;

impl Grantee<'_> {
    /// SHA-256 over the issuer, the subject and every agent of the chain, each
    /// length-prefixed (no two lists hash alike): what identifies the grantee in
    /// caches. The grant is not part of it; caches add what shapes the credential.
    pub fn identity(&self) -> [u8; 32] {
        identity_digest(self.issuer, self.subject, self.chain)
    }

    /// `<user>-via-<agent>` (the newest agent's last path segment), or `<user>-direct`
    /// for the user's own token, escaped to `[A-Za-z0-9_.@-]` (every other byte is
    /// `=XX`, so `alice smith` and `alice/smith` stay apart and a newline or NUL never
    /// reaches a peer), at most [`NAME_MAX`] bytes, ending in `+` and 16 hex digits of
    /// [`Grantee::identity`]: another issuer's `alice` gets another name.
    pub fn credential_name(&self) -> String {
        let suffix = &hex::encode(self.identity())[..SUFFIX_HEX];
        let label = escape(&user_via_agent(self.user, self.chain));
        labelled(&label, suffix)
    }

    /// The user alone, escaped and suffixed like [`Grantee::credential_name`] but over
    /// (issuer, subject) only (AWS `SourceIdentity`, which must not change with the
    /// agent).
    pub fn user_name(&self) -> String {
        let suffix = &hex::encode(identity_digest(self.issuer, self.subject, &[]))[..SUFFIX_HEX];
        labelled(&escape(self.user), suffix)
    }
}

fn identity_digest(issuer: &str, subject: &str, chain: &[String]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut part = |tag: u8, s: &str| {
        h.update([tag]);
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    part(0, issuer);
    part(1, subject);
    chain.iter().for_each(|a| part(2, a));
    h.finalize().into()
}

/// `label` cut (at a whole escape) so that `label+suffix` fits [`NAME_MAX`].
fn labelled(label: &str, suffix: &str) -> String {
    let room = NAME_MAX - (suffix.len() + 1);
    let mut cut = label.len().min(room);
    // Never split an `=XX` escape: back up to its `=`.
    if let Some(eq) = label[..cut].rfind('=').filter(|&i| i + 3 > cut) {
        cut = eq;
    }
    format!("{}+{suffix}", &label[..cut])
}

/// Every byte outside `[A-Za-z0-9_.@-]` as `=XX` (upper-case hex): injective, and
/// within the alphabets of AWS names (`[\w+=,.@-]`), SSH key ids and log lines.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.@-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// `<user>-via-<agent>` (the newest agent's last path segment, e.g. `summarizer-tech`),
/// or `<user>-direct` for the user's own token, unescaped.
fn user_via_agent(user: &str, chain: &[String]) -> String {
    match chain.first() {
        Some(agent) => {
            let short = agent
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or(agent);
            format!("{user}-via-{short}")
        }
        None => format!("{user}-direct"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grantee<'a>(issuer: &'a str, user: &'a str, chain: &'a [String]) -> Grantee<'a> {
        Grantee {
            issuer,
            subject: user,
            user,
            chain,
            grant: &[],
            exclude: &[],
        }
    }

    const KC: &str = "https://keycloak.example.com/realms/demo";

    #[test]
    fn names_read_as_user_via_agent_with_an_identity_suffix() {
        let chain = ["spiffe://demo.example.com/agent/summarizer-tech".to_string()];
        let name = grantee(KC, "alice", &chain).credential_name();
        let (label, suffix) = name.split_once('+').unwrap();
        assert_eq!(label, "alice-via-summarizer-tech");
        assert_eq!(suffix.len(), 16);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        let direct = grantee(KC, "alice", &[]).credential_name();
        assert!(direct.starts_with("alice-direct+"), "{direct}");
        assert_eq!(
            name,
            grantee(KC, "alice", &chain).credential_name(),
            "the same identity gets the same name"
        );
    }

    #[test]
    fn different_identities_never_share_a_name() {
        let chain = ["spiffe://demo.example.com/agent/summarizer-tech".to_string()];
        let other_chain = ["spiffe://other.example.com/agent/summarizer-tech".to_string()];
        let names = [
            grantee(KC, "alice", &chain).credential_name(),
            grantee("https://other.example.com", "alice", &chain).credential_name(),
            grantee(KC, "alice smith", &chain).credential_name(),
            grantee(KC, "alice/smith", &chain).credential_name(),
            grantee(KC, "alice", &other_chain).credential_name(),
            grantee(KC, "alice", &[]).credential_name(),
        ];
        let distinct: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
        assert!(names[2].starts_with("alice=20smith-via-"), "{}", names[2]);
        assert!(names[3].starts_with("alice=2Fsmith-via-"), "{}", names[3]);
    }

    #[test]
    fn names_keep_to_a_safe_alphabet_and_length() {
        let chain = ["spiffe://x/agent/ü*".to_string()];
        for user in ["é smith/\u{7}".repeat(20), "a\nb\0c".into(), "x".into()] {
            let name = grantee(KC, &user, &chain).credential_name();
            assert!(name.len() <= 64, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.@-=+".contains(&b)),
                "{name}"
            );
            let (label, _) = name.split_once('+').unwrap();
            // An escape is never cut in half.
            let tail = label.rfind('=').map_or("", |i| &label[i..]);
            assert!(tail.is_empty() || tail.len() >= 3, "{name}");
        }
        let short = grantee(KC, "bob", &[]).user_name();
        assert!(short.starts_with("bob+"), "{short}");
        assert_ne!(
            short,
            grantee("https://other.example.com", "bob", &[]).user_name()
        );
    }
}
