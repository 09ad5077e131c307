//! `name=value&…` (a query string or a form body) read so that no server can read it
//! otherwise: the judged parameter must appear exactly once, spelled exactly, and
//! everything that parsers treat differently is refused instead of guessed.
//!
//! Servers disagree on a repeated name (first, last or all values), on names that differ
//! only in case (ASP.NET folds them) or by a `[…]` suffix (PHP and Rails make `name[]`
//! an array of `name`), on `;` as a separator (older CGI and Go), on `+` (a space only
//! in forms) and on malformed `%` escapes. Each of these is refused, for the whole
//! string when it concerns any parameter (a repeated name, `;`, a bad escape) and for
//! the judged one when it concerns its spelling.

/// Why a parameter string is refused (shown to the caller, with the field's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Ambiguity {
    #[error("parameter `{0}` appears more than once")]
    Repeated(String),
    #[error("`{field}` is also spelled `{spelled}`, which some servers read as `{field}`")]
    Respelled { field: String, spelled: String },
    #[error("`;` separates parameters for some servers")]
    Semicolon,
    #[error("a malformed `%` escape")]
    BadEscape,
    #[error("a parameter that does not decode to UTF-8")]
    NotUtf8,
    #[error("`+` in `{0}` is a space to some servers and a plus to others")]
    Plus(String),
}

/// The decoded pairs of `raw`, refusing a repeated name, `;` and bad escapes.
pub(super) fn strict_pairs(raw: &str) -> Result<Vec<(String, String)>, Ambiguity> {
    if raw.contains(';') {
        return Err(Ambiguity::Semicolon);
    }
    // Every escape well formed, anywhere: a bad one in one parameter is read
    // differently by different servers.
    crate::percent::check(raw).map_err(|_| Ambiguity::BadEscape)?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let name = decode(k)?;
        if pairs.iter().any(|(n, _)| *n == name) {
            return Err(Ambiguity::Repeated(printable(&name)));
        }
        pairs.push((name, decode(v)?));
    }
    Ok(pairs)
}

/// The value of `field` in `pairs` (from `raw`, which [`strict_pairs`] accepted), if it
/// is there: refused when another name reads as `field` to some server, or when its
/// spelling holds a `+`.
pub(super) fn judged(
    raw: &str,
    pairs: &[(String, String)],
    field: &str,
) -> Result<Option<String>, Ambiguity> {
    if let Some((spelled, _)) = pairs.iter().find(|(n, _)| n != field && reads_as(n, field)) {
        return Err(Ambiguity::Respelled {
            field: field.to_string(),
            spelled: printable(spelled),
        });
    }
    let Some((_, value)) = pairs.iter().find(|(n, _)| n == field) else {
        return Ok(None);
    };
    let plus = raw.split('&').any(|part| {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        (k.contains('+') || v.contains('+')) && decode(k).is_ok_and(|k| k == field)
    });
    if plus {
        return Err(Ambiguity::Plus(field.to_string()));
    }
    Ok(Some(value.clone()))
}

/// Whether some server reads a parameter named `name` as `field`: the same name in
/// another case, or with a `[…]` suffix.
pub(super) fn reads_as(name: &str, field: &str) -> bool {
    let base = name.split('[').next().unwrap_or(name);
    base.eq_ignore_ascii_case(field)
}

/// Whether any parameter of `raw`, split on `&` and `;` and decoded leniently (as the
/// most forgiving server would), reads as `field`.
pub(super) fn any_name_reads_as(raw: &str, field: &str) -> bool {
    raw.split(['&', ';']).any(|part| {
        let name = part
            .split_once('=')
            .map_or(part, |(k, _)| k)
            .replace('+', " ");
        let name = percent_encoding::percent_decode_str(&name).decode_utf8_lossy();
        reads_as(name.trim(), field)
    })
}

/// Form decoding (`+` is a space, `%XX` a byte, `crate::percent`), refusing a bad escape
/// and what is not UTF-8.
fn decode(s: &str) -> Result<String, Ambiguity> {
    crate::percent::decode(&s.replace('+', " ")).map_err(|e| match e {
        crate::percent::PercentError::BadEscape => Ambiguity::BadEscape,
        crate::percent::PercentError::NotUtf8 => Ambiguity::NotUtf8,
    })
}

/// A caller-supplied name, shortened and without control characters, for a message.
pub(super) fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(raw: &str) -> Result<Option<String>, Ambiguity> {
        let pairs = strict_pairs(raw)?;
        judged(raw, &pairs, "channel")
    }

    #[test]
    fn one_exact_spelling_is_read() {
        assert_eq!(
            read("channel=finance-general"),
            Ok(Some("finance-general".into()))
        );
        assert_eq!(
            read("limit=10&channel=finance%2Dgeneral&cursor="),
            Ok(Some("finance-general".into()))
        );
        assert_eq!(read("limit=10"), Ok(None));
        assert_eq!(read(""), Ok(None));
        // A name that is not the field's (to anyone) leaves it missing.
        assert_eq!(read("chan+nel=finance-general"), Ok(None));
    }

    #[test]
    fn every_spelling_servers_read_differently_is_refused() {
        for raw in [
            "channel=finance-general&channel=hr-private",
            "channel=finance-general&ch%61nnel=hr-private",
            "channel&channel=finance-general",
            "channel=finance-general&Channel=hr-private",
            "CHANNEL=hr-private&channel=finance-general",
            "channel=finance-general&channel[]=hr-private",
            "channel[0]=hr-private&channel=finance-general",
            "a=b;channel=hr-private&channel=finance-general",
            "channel=finance-general;channel=hr-private",
            "channel=finance%2general",
            "channel=finance-general&x=%",
            "channel=%ff",
            "channel=finance+general",
            "limit=1&limit=2&channel=finance-general",
        ] {
            assert!(read(raw).is_err(), "{raw} was read as {:?}", read(raw));
        }
    }
}
