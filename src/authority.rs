//! The destination of an outbound request: its `:authority` read once, and the host
//! patterns of the route table.
//!
//! actbridge never decides alone where a request goes: Envoy routes it, and actbridge
//! refuses unless Envoy's route is the one actbridge judged (`RequestFacts::proxy_route`).
//! Both match the same way — the host name exactly (ASCII case-insensitive), the port
//! ignored (Envoy's `ignore_port_in_host_matching`), or `*.` and a domain for any name
//! under it (Envoy's suffix wildcard) — and actbridge refuses the spellings a forward
//! proxy or an upstream could read as another host: userinfo (`@`), a comma, a trailing
//! dot, an empty or non-numeric port, characters no host name has.

/// Why an authority is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    /// Userinfo (`user@host`): the host a proxy dials may not be the one matched.
    #[error("the authority carries userinfo")]
    Userinfo,
    /// A list (`a,b`), as two Host headers joined would give.
    #[error("the authority is a list")]
    List,
    /// A trailing dot (`host.`): another name for Envoy's domain matching.
    #[error("the host ends with a dot")]
    TrailingDot,
    /// An empty host, an empty or non-numeric port, or a character no host name has.
    #[error("the authority is malformed")]
    Malformed,
}

/// An authority read once: the host (lower case; an IPv6 literal keeps its brackets) and
/// the port, if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Authority {
    /// The host, lower case.
    pub host: String,
    /// The port, when the authority names one.
    pub port: Option<u16>,
}

impl Authority {
    /// Reads `raw` (an `:authority` or `Host` value).
    pub(crate) fn parse(raw: &str) -> Result<Authority, AuthorityError> {
        if raw.contains('@') {
            return Err(AuthorityError::Userinfo);
        }
        if raw.contains(',') {
            return Err(AuthorityError::List);
        }
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (inside, after) = rest.split_once(']').ok_or(AuthorityError::Malformed)?;
            if inside.is_empty()
                || !inside
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return Err(AuthorityError::Malformed);
            }
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(AuthorityError::Malformed)?),
            };
            (format!("[{}]", inside.to_ascii_lowercase()), port)
        } else {
            let (host, port) = match raw.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (raw, None),
            };
            if host.ends_with('.') {
                return Err(AuthorityError::TrailingDot);
            }
            let name_byte = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
            if host.is_empty()
                || host.starts_with('.')
                || host.contains("..")
                || !host.bytes().all(name_byte)
            {
                return Err(AuthorityError::Malformed);
            }
            (host.to_ascii_lowercase(), port)
        };
        let port = match port {
            None => None,
            Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                Some(p.parse().map_err(|_| AuthorityError::Malformed)?)
            }
            Some(_) => return Err(AuthorityError::Malformed),
        };
        Ok(Authority { host, port })
    }
}

/// A route's `host`: one name, or every name under a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// This host name exactly (lower case).
    Exact(String),
    /// Any name ending in `.` + this domain (lower case), at least one label more.
    Under(String),
}

impl HostPattern {
    /// Reads a route's `host`: `name`, `[v6]`, or `*.domain`; no port, no other wildcard.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.to_ascii_lowercase();
        let (under, name) = match lower.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, lower.as_str()),
        };
        let parsed = Authority::parse(name).map_err(|e| format!("`{text}`: {e}"))?;
        if parsed.port.is_some() || name.contains('*') {
            return Err(format!(
                "`{text}`: a host name (`api.example.com`) or `*.` and a domain; no port (the port is not matched), no other wildcard"
            ));
        }
        Ok(if under {
            HostPattern::Under(parsed.host)
        } else {
            HostPattern::Exact(parsed.host)
        })
    }

    /// Whether `host` (an [`Authority::host`]) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host == h,
            HostPattern::Under(d) => host
                .strip_suffix(d.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty()),
        }
    }

    /// The Envoy virtual-host domain that matches the same names.
    pub fn envoy_domain(&self) -> String {
        match self {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Under(d) => format!("*.{d}"),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.envoy_domain())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_read_once() {
        let a = |s: &str| Authority::parse(s);
        assert_eq!(a("Document-Service").unwrap().host, "document-service");
        assert_eq!(a("document-service:8080").unwrap().port, Some(8080));
        assert_eq!(a("[::1]:15000").unwrap().host, "[::1]");
        assert_eq!(a("10.0.0.1").unwrap().host, "10.0.0.1");
        for (bad, why) in [
            ("document-service@evil.example", AuthorityError::Userinfo),
            ("user:pw@document-service", AuthorityError::Userinfo),
            ("document-service,evil.example", AuthorityError::List),
            ("document-service.", AuthorityError::TrailingDot),
            ("document-service.:80", AuthorityError::TrailingDot),
            ("", AuthorityError::Malformed),
            (":80", AuthorityError::Malformed),
            ("document-service:", AuthorityError::Malformed),
            ("document-service:http", AuthorityError::Malformed),
            ("document-service:99999", AuthorityError::Malformed),
            ("document-service:+80", AuthorityError::Malformed),
            ("document service", AuthorityError::Malformed),
            ("document-service/x", AuthorityError::Malformed),
            ("a..b", AuthorityError::Malformed),
            ("%64ocument-service", AuthorityError::Malformed),
            ("[::1", AuthorityError::Malformed),
            ("[::1]x", AuthorityError::Malformed),
        ] {
            assert_eq!(a(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn host_patterns_match_names_exactly_or_under_a_domain() {
        let exact = HostPattern::parse("Document-Service").unwrap();
        assert!(exact.matches("document-service"));
        assert!(!exact.matches("document-servicex"));
        assert!(!exact.matches("x.document-service"));
        let under = HostPattern::parse("*.s3.amazonaws.com").unwrap();
        assert!(under.matches("bucket.s3.amazonaws.com"));
        assert!(under.matches("a.b.s3.amazonaws.com"));
        assert!(!under.matches("s3.amazonaws.com"));
        assert!(!under.matches("evils3.amazonaws.com"));
        assert_eq!(under.envoy_domain(), "*.s3.amazonaws.com");
        for bad in [
            "document-service*",
            "doc*.example",
            "a:80",
            "*",
            "*.",
            "a.*",
            "x@y",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
