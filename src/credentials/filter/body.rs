//! A request body read only as its declared `Content-Type`: JSON
//! (`application/json`) or a form (`application/x-www-form-urlencoded`), UTF-8, not
//! compressed. A body without exactly one such type, or one that another type would
//! read with the judged field in it (a form that is also JSON, JSON whose text also
//! reads as a form carrying the field), is refused: a server that sniffs the body
//! instead of trusting the header must not find another value.

use super::params::{self, Ambiguity};
use crate::agentproto::jsonrpc::strict_json;

/// Why a body is refused (shown to the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum BodyRefusal {
    #[error(
        "the body needs exactly one Content-Type: application/json or application/x-www-form-urlencoded (UTF-8)"
    )]
    ContentType,
    #[error("a compressed body (Content-Encoding) is not read")]
    Encoded,
    #[error("the body is not what its Content-Type says ({0})")]
    Malformed(&'static str),
    #[error("the body reads as both JSON and a form")]
    Ambiguous,
    #[error("`{0}` is not a string")]
    NotAString(String),
    #[error(transparent)]
    Params(#[from] Ambiguity),
}

/// The declared body type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyType {
    Json,
    Form,
}

/// The one declared type of a body with `content_types` and `content_encodings`.
pub(super) fn declared(
    content_types: &[&[u8]],
    content_encodings: &[&[u8]],
) -> Result<BodyType, BodyRefusal> {
    let identity = |v: &&[u8]| {
        std::str::from_utf8(v).is_ok_and(|v| {
            v.split(',')
                .all(|c| c.trim().eq_ignore_ascii_case("identity"))
        })
    };
    if !content_encodings.iter().all(identity) {
        return Err(BodyRefusal::Encoded);
    }
    let [one] = content_types else {
        return Err(BodyRefusal::ContentType);
    };
    let mime: mime::Mime = std::str::from_utf8(one)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(BodyRefusal::ContentType)?;
    let utf8 = mime
        .params()
        .all(|(name, value)| name == mime::CHARSET && value.as_str().eq_ignore_ascii_case("utf-8"));
    if !utf8 || mime.params().count() > 1 {
        return Err(BodyRefusal::ContentType);
    }
    match mime.essence_str() {
        "application/json" => Ok(BodyType::Json),
        "application/x-www-form-urlencoded" => Ok(BodyType::Form),
        _ => Err(BodyRefusal::ContentType),
    }
}

/// The value of the top-level `field` of `body`, read as `kind`; `None` when absent.
pub(super) fn field(
    kind: BodyType,
    body: &[u8],
    field: &str,
) -> Result<Option<String>, BodyRefusal> {
    let text = std::str::from_utf8(body).map_err(|_| BodyRefusal::Malformed("not UTF-8"))?;
    match kind {
        BodyType::Json => {
            let value = strict_json(body)
                .map_err(|_| BodyRefusal::Malformed("not one JSON object without repeated keys"))?;
            let object = value
                .as_object()
                .ok_or(BodyRefusal::Malformed("not a JSON object"))?;
            if let Some(spelled) = object
                .keys()
                .find(|k| *k != field && params::reads_as(k, field))
            {
                return Err(Ambiguity::Respelled {
                    field: field.to_string(),
                    spelled: params::printable(spelled),
                }
                .into());
            }
            // The same text read as a form, however leniently, must not carry the field.
            if params::any_name_reads_as(text, field) {
                return Err(BodyRefusal::Ambiguous);
            }
            match object.get(field) {
                None => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(BodyRefusal::NotAString(field.to_string())),
            }
        }
        BodyType::Form => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                return Err(BodyRefusal::Ambiguous);
            }
            let pairs = params::strict_pairs(text)?;
            Ok(params::judged(text, &pairs, field)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(content_type: &str, body: &str) -> Result<Option<String>, BodyRefusal> {
        let kind = declared(&[content_type.as_bytes()], &[])?;
        field(kind, body.as_bytes(), "channel")
    }

    #[test]
    fn json_and_forms_are_read_as_declared() {
        let ok = Ok(Some("finance-general".to_string()));
        assert_eq!(
            read(
                "application/json",
                r#"{"channel":"finance-general","text":"hi"}"#
            ),
            ok
        );
        assert_eq!(
            read(
                "Application/JSON; charset=UTF-8",
                r#"{"channel":"finance-general"}"#
            ),
            ok
        );
        assert_eq!(
            read(
                "application/x-www-form-urlencoded",
                "channel=finance-general&text=hi%20there"
            ),
            ok
        );
        assert_eq!(read("application/json", r#"{"text":"hi"}"#), Ok(None));
    }

    #[test]
    fn what_another_reader_could_read_otherwise_is_refused() {
        let form = "application/x-www-form-urlencoded";
        let json = "application/json";
        for (content_type, body) in [
            (
                json,
                r#"{"channel":"finance-general","channel":"hr-private"}"#,
            ),
            (
                json,
                r#"{"channel":"finance-general","Channel":"hr-private"}"#,
            ),
            (
                json,
                r#"{"channel":"finance-general","x":"&channel=hr-private&"}"#,
            ),
            (
                json,
                r#"{"channel":"finance-general","x":";ch%61nnel=hr-private;%"}"#,
            ),
            (json, r#"{"channel":["finance-general"]}"#),
            (json, r#"["channel","finance-general"]"#),
            (
                json,
                r#"{"channel":"finance-general"} {"channel":"hr-private"}"#,
            ),
            (
                form,
                r#"{"channel":"finance-general","x":"&channel=hr-private"}"#,
            ),
            (form, "channel=finance-general&channel=hr-private"),
            (form, "channel=finance-general&Channel=hr-private"),
            ("text/plain", "channel=finance-general"),
            (
                "application/json; charset=utf-16",
                r#"{"channel":"finance-general"}"#,
            ),
            (
                "application/json; charset=utf-8; x=y",
                r#"{"channel":"finance-general"}"#,
            ),
            ("multipart/form-data; boundary=x", "channel=finance-general"),
            (
                "application/json, application/x-www-form-urlencoded",
                "channel=hr-private",
            ),
        ] {
            let got = read(content_type, body);
            assert!(got.is_err(), "{content_type} {body}: {got:?}");
        }
        let kind = declared(&[b"application/json", b"application/json"], &[]);
        assert_eq!(kind, Err(BodyRefusal::ContentType), "two Content-Types");
        assert_eq!(declared(&[], &[]), Err(BodyRefusal::ContentType), "none");
        assert_eq!(
            declared(&[b"application/json"], &[b"gzip"]),
            Err(BodyRefusal::Encoded)
        );
        assert_eq!(
            declared(&[b"application/json"], &[b"identity"]),
            Ok(BodyType::Json)
        );
    }
}
