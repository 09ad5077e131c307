//! The inline session policy, built as typed data and serialised (never assembled by
//! string formatting): read objects under each granted prefix, list the bucket only
//! under those prefixes, and deny the objects the policy excluded. AWS evaluates it on
//! every request made with the session: the role's permissions ∩ this document.

use std::collections::BTreeMap;

use serde::Serialize;

use super::CredentialError;
use crate::config::PrefixMapping;

/// STS refuses a session policy longer than this (plain text, characters).
pub(super) const MAX_POLICY_CHARS: usize = 2048;

#[derive(Serialize)]
struct Document<'a> {
    #[serde(rename = "Version")]
    version: &'static str,
    #[serde(rename = "Statement")]
    statement: Vec<Statement<'a>>,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "Sid")]
    sid: &'static str,
    #[serde(rename = "Effect")]
    effect: &'static str,
    #[serde(rename = "Action")]
    action: &'static str,
    #[serde(rename = "Resource")]
    resource: Vec<String>,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    condition: Option<BTreeMap<&'static str, BTreeMap<&'static str, Vec<&'a str>>>>,
}

/// The key prefixes `grant` maps to, plus the `public` ones, sorted and deduplicated.
/// Every grant entry must be a safe name: no wildcard, `/`, `..` or control character
/// can reach a policy. A grant that maps to nothing but public prefixes maps to nothing.
pub(super) fn prefixes(
    grant: &[String],
    mapping: &PrefixMapping,
    public: &[String],
) -> Result<Vec<String>, CredentialError> {
    let mut out = Vec::new();
    for entry in grant {
        if !is_safe_name(entry) {
            return Err(CredentialError::UnsafeGrantEntry(
                entry.chars().take(64).collect(),
            ));
        }
        match mapping {
            PrefixMapping::Template(t) => out.push(t.replace("{grant}", entry)),
            PrefixMapping::Explicit(map) => {
                out.extend(map.get(entry).into_iter().flatten().cloned());
            }
        }
    }
    if out.is_empty() {
        return Err(CredentialError::NothingGranted);
    }
    out.extend_from_slice(public);
    out.sort();
    out.dedup();
    Ok(out)
}

/// The session policy for `bucket`: reads under `prefixes`, lists under them, and an
/// explicit deny for each `exclude`d key that lies under one of them. Minified JSON,
/// refused when over STS's limit.
pub(super) fn build(
    bucket: &str,
    prefixes: &[String],
    exclude: &[String],
) -> Result<String, CredentialError> {
    let object = |k: &str| format!("arn:aws:s3:::{bucket}/{k}");
    let list_prefixes: Vec<String> = prefixes
        .iter()
        .flat_map(|p| [p.clone(), format!("{p}*")])
        .collect();
    let mut statement = vec![
        Statement {
            sid: "ReadGrantedPrefixes",
            effect: "Allow",
            action: "s3:GetObject",
            resource: prefixes.iter().map(|p| object(&format!("{p}*"))).collect(),
            condition: None,
        },
        Statement {
            sid: "ListGrantedPrefixes",
            effect: "Allow",
            action: "s3:ListBucket",
            resource: vec![format!("arn:aws:s3:::{bucket}")],
            condition: Some(BTreeMap::from([(
                "StringLike",
                BTreeMap::from([(
                    "s3:prefix",
                    list_prefixes.iter().map(String::as_str).collect(),
                )]),
            )])),
        },
    ];
    let mut withheld: Vec<String> = Vec::new();
    for key in exclude {
        if !is_plain_key(key) {
            return Err(CredentialError::UnsafeGrantEntry(
                key.chars().take(64).collect(),
            ));
        }
        if prefixes.iter().any(|p| key.starts_with(p.as_str())) {
            withheld.push(object(key));
        }
    }
    withheld.sort();
    withheld.dedup();
    if !withheld.is_empty() {
        statement.push(Statement {
            sid: "WithheldObjects",
            effect: "Deny",
            action: "s3:GetObject",
            resource: withheld,
            condition: None,
        });
    }
    let json = serde_json::to_string(&Document {
        version: "2012-10-17",
        statement,
    })
    .map_err(|e| CredentialError::InvalidResponse(format!("session policy: {e}")))?;
    let chars = json.chars().count();
    if chars > MAX_POLICY_CHARS {
        return Err(CredentialError::PolicyTooLarge(format!(
            "the session policy has {chars} characters; STS accepts {MAX_POLICY_CHARS}"
        )));
    }
    Ok(json)
}

/// A grant entry: letters, digits, `_`, `-` and `.` (not `..`), 1–64 characters.
fn is_safe_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        && !s.contains("..")
        && s != "."
}

/// An excluded key: no wildcard (`*`, `?`), no policy variable (`$`), no control
/// character, no `..` segment.
fn is_plain_key(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(['*', '?', '$'])
        && !s.chars().any(char::is_control)
        && s.split('/').all(|seg| seg != ".." && seg != ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> PrefixMapping {
        PrefixMapping::Template("{grant}/".into())
    }

    #[test]
    fn one_entry_per_granted_department() {
        let grant = ["finance".to_string(), "engineering".to_string()];
        let p = prefixes(&grant, &template(), &[]).unwrap();
        assert_eq!(p, ["engineering/", "finance/"]);
        let json = build("docs", &p, &[]).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "ReadGrantedPrefixes", "Effect": "Allow", "Action": "s3:GetObject",
                     "Resource": ["arn:aws:s3:::docs/engineering/*", "arn:aws:s3:::docs/finance/*"]},
                    {"Sid": "ListGrantedPrefixes", "Effect": "Allow", "Action": "s3:ListBucket",
                     "Resource": ["arn:aws:s3:::docs"],
                     "Condition": {"StringLike": {"s3:prefix":
                        ["engineering/", "engineering/*", "finance/", "finance/*"]}}}
                ]
            })
        );
    }

    #[test]
    fn excluded_keys_under_a_granted_prefix_are_denied() {
        let p = prefixes(&["engineering".to_string()], &template(), &[]).unwrap();
        let exclude = [
            "engineering/budget.md".to_string(),
            "admin/policies.md".to_string(),
        ];
        let v: serde_json::Value =
            serde_json::from_str(&build("docs", &p, &exclude).unwrap()).unwrap();
        assert_eq!(
            v["Statement"][2],
            serde_json::json!({"Sid": "WithheldObjects", "Effect": "Deny", "Action": "s3:GetObject",
                               "Resource": ["arn:aws:s3:::docs/engineering/budget.md"]})
        );
    }

    #[test]
    fn unsafe_grant_entries_never_reach_a_policy() {
        for bad in ["*", "fin*", "a?", "..", "a/b", "", "a\u{0}", "fin ance"] {
            assert!(
                matches!(
                    prefixes(&[bad.to_string()], &template(), &[]),
                    Err(CredentialError::UnsafeGrantEntry(_))
                ),
                "{bad:?} accepted"
            );
        }
        let p = prefixes(
            &["finance".to_string()],
            &template(),
            &["public/".to_string()],
        )
        .unwrap();
        assert!(build("docs", &p, &["finance/*".to_string()]).is_err());
    }

    #[test]
    fn explicit_mapping_skips_unlisted_entries() {
        let map = PrefixMapping::Explicit(BTreeMap::from([(
            "finance".to_string(),
            vec!["reports/finance/".to_string()],
        )]));
        assert_eq!(
            prefixes(&["finance".into(), "hr".into()], &map, &["public/".into()]).unwrap(),
            ["public/", "reports/finance/"]
        );
        assert_eq!(
            prefixes(&["hr".into()], &map, &["public/".into()]),
            Err(CredentialError::NothingGranted)
        );
    }

    #[test]
    fn an_oversized_policy_is_refused_with_its_size() {
        let grant: Vec<String> = (0..60).map(|i| format!("department-{i:03}")).collect();
        let p = prefixes(&grant, &template(), &[]).unwrap();
        match build("docs", &p, &[]) {
            Err(CredentialError::PolicyTooLarge(msg)) => assert!(msg.contains("2048"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
