//! `${VAR}` in the config file: replaced by the environment variable's value before the
//! YAML is parsed, line by line, so errors keep their line numbers.
//!
//! - `${VAR}` is the value of `VAR`; unset (or empty) is an error naming the variable and
//!   the line, unless a default is given: `${VAR:-default}`. `$${` is a literal `${`.
//! - A value can never change the file's structure (add a key, end a string, start a
//!   comment). Inside a double-quoted string it is inserted escaped; inside a
//!   single-quoted one, with `'` doubled; elsewhere (a plain value) it must be made of
//!   characters that mean nothing to YAML there (letters, digits and `._~/@+=%-`, `:`
//!   inside), or the file is refused, naming the variable: quote the reference then
//!   (`secret: "${CLIENT_SECRET}"`).
//! - A plain value that is exactly `${VAR}` takes the type its text has (`9001` is a
//!   number, as if written); quoted, it stays a string.
//! - References in comments are left alone.
//!
//! Prefer the `*_file` and `*_env` keys for secrets: they are read where they are used,
//! never pasted into the text, and `check-config --offline` can skip them.
//!
//! Hand-written: no kept crate expands variables into YAML text with quoting that keeps
//! the document's structure (shell-style expanders paste raw text).

use super::ConfigError;
use super::Env;

/// Where in the line a reference sits.
#[derive(Clone, Copy, PartialEq)]
enum Quoting {
    Plain,
    Double,
    Single,
}

/// `text` with every `${VAR}` replaced (see the module doc).
pub(super) fn expand(text: &str, env: &dyn Env) -> Result<String, ConfigError> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        expand_line(line, n + 1, env, &mut out)?;
    }
    Ok(out)
}

fn expand_line(
    line: &str,
    number: usize,
    env: &dyn Env,
    out: &mut String,
) -> Result<(), ConfigError> {
    let mut quoting = Quoting::Plain;
    let mut prev: Option<char> = None;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '$' && rest.starts_with("$${") {
            out.push_str("${");
            rest = &rest[3..];
            prev = Some('{');
            continue;
        }
        if c == '$' && rest.starts_with("${") {
            let Some(end) = rest.find('}') else {
                return Err(at(number, "${", "`${` without its `}`"));
            };
            let reference = &rest[2..end];
            let after = &rest[end + 1..];
            let value = lookup(reference, number, env)?;
            out.push_str(&insert(&value, reference, quoting, number)?);
            rest = after;
            prev = Some('}');
            continue;
        }
        match (quoting, c) {
            // A comment: the rest of the line is left as it is.
            (Quoting::Plain, '#') if prev.is_none_or(char::is_whitespace) => {
                out.push_str(rest);
                return Ok(());
            }
            (Quoting::Plain, '"') => quoting = Quoting::Double,
            (Quoting::Plain, '\'') => quoting = Quoting::Single,
            (Quoting::Double, '\\') => {
                // An escape: copy it and the escaped character.
                let mut it = rest.chars();
                it.next();
                out.push('\\');
                if let Some(e) = it.next() {
                    out.push(e);
                    rest = &rest[1 + e.len_utf8()..];
                } else {
                    rest = &rest[1..];
                }
                prev = Some('x');
                continue;
            }
            (Quoting::Double, '"') | (Quoting::Single, '\'') => quoting = Quoting::Plain,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        prev = Some(c);
    }
    Ok(())
}

/// The value of `NAME` or `NAME:-default`.
fn lookup(reference: &str, line: usize, env: &dyn Env) -> Result<String, ConfigError> {
    let (name, default) = match reference.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(at(
            line,
            reference,
            "a variable name is letters, digits and `_`",
        ));
    }
    match (env.get(name).filter(|v| !v.is_empty()), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d.to_string()),
        (None, None) => Err(at(
            line,
            name,
            format_args!(
                "environment variable `{name}` is not set (write `${{{name}:-default}}` for a default)"
            ),
        )),
    }
}

/// `value` as it may stand where the reference was.
fn insert(
    value: &str,
    reference: &str,
    quoting: Quoting,
    line: usize,
) -> Result<String, ConfigError> {
    match quoting {
        Quoting::Double => {
            // A JSON string is a YAML double-quoted string; without its quotes it is
            // the escaped inside of one.
            let json = serde_json::to_string(value).unwrap_or_default();
            Ok(json[1..json.len() - 1].to_string())
        }
        Quoting::Single if value.contains(['\n', '\r']) => {
            Err(at(line, reference, "holds a line break: use double quotes"))
        }
        Quoting::Single => Ok(value.replace('\'', "''")),
        Quoting::Plain if plain_safe(value) => Ok(value.to_string()),
        Quoting::Plain => Err(at(
            line,
            reference,
            "its value has characters YAML reads here (spaces, `#`, quotes, brackets, …): write the reference in double quotes",
        )),
    }
}

/// Characters that mean nothing to YAML inside or at the start of a plain scalar.
fn plain_safe(value: &str) -> bool {
    let inner = |c: char| c.is_ascii_alphanumeric() || "._~/@+=%-:".contains(c);
    !value.is_empty()
        && value.chars().all(inner)
        && !value.starts_with(['-', ':', '@', '%'])
        && !value.ends_with(':')
}

/// A problem with the reference `${reference}` on `line` (the file's keys are not read
/// yet: the line is the position).
fn at(line: usize, reference: &str, problem: impl std::fmt::Display) -> ConfigError {
    let problem = ConfigError::Variable {
        reference: reference.chars().take(100).collect(),
        problem: problem.to_string(),
    };
    ConfigError::Several {
        file: None,
        problems: vec![(Some(line), problem)],
    }
}

#[cfg(test)]
fn line_of(e: &ConfigError) -> Option<usize> {
    match e {
        ConfigError::Several { problems, .. } => problems.first().and_then(|(l, _)| *l),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn references_are_replaced_with_their_type_as_written() {
        let e = env(&[("PORT", "9001"), ("HOST", "idp.example"), ("ON", "true")]);
        let text = "a: ${PORT}\nb: \"${PORT}\"\nc: https://${HOST}:8443/x\nd: ${ON}\ne: ${NOPE:-fallback}\n";
        let v = parse(&expand(text, &e).unwrap());
        assert_eq!(v["a"], serde_yaml_ng::Value::from(9001));
        assert_eq!(v["b"], serde_yaml_ng::Value::from("9001"));
        assert_eq!(
            v["c"],
            serde_yaml_ng::Value::from("https://idp.example:8443/x")
        );
        assert_eq!(v["d"], serde_yaml_ng::Value::from(true));
        assert_eq!(v["e"], serde_yaml_ng::Value::from("fallback"));
    }

    #[test]
    fn escapes_and_comments_are_left_alone() {
        let e = env(&[]);
        let text = "a: $${NOT}\nb: x # ${IN_COMMENT}\n# ${ALSO}\nc: 'it''s'\n";
        let out = expand(text, &e).unwrap();
        assert_eq!(
            out,
            "a: ${NOT}\nb: x # ${IN_COMMENT}\n# ${ALSO}\nc: 'it''s'\n"
        );
    }

    #[test]
    fn an_unset_variable_or_a_bad_name_is_an_error_naming_it_and_the_line() {
        let err = expand("a: 1\nb: ${MISSING}\n", &env(&[])).unwrap_err();
        assert_eq!(line_of(&err), Some(2));
        assert!(err.to_string().contains("MISSING"), "{err}");
        let err = expand("a: ${1X}\n", &env(&[])).unwrap_err();
        assert_eq!(line_of(&err), Some(1));
        let err = expand("a: ${OPEN\n", &env(&[])).unwrap_err();
        assert_eq!(line_of(&err), Some(1));
    }

    /// Whatever a variable holds, it never changes the document's shape: quoted, the
    /// value comes back exactly; plain, it comes back exactly or the file is refused.
    #[test]
    fn no_value_changes_the_structure() {
        let hostile = [
            "x\nadmin: true",
            "x\", \"admin\": \"true",
            "x' \nb: '1",
            "a # b",
            "[1, 2]",
            "{k: v}",
            "*alias",
            "&anchor x",
            "!!binary AAAA",
            "- item",
            "key: value",
            "trailing:",
            "\\\"",
            "\u{0}\u{1b}[31m",
            "'",
            "\"",
            "| block",
            "> folded",
            "@at",
            "%TAG",
            "ünïcödé ✓",
            "",
        ];
        for value in hostile {
            let e = env(&[("V", value)]);
            for (template, quoted) in [
                ("a: \"${V}\"\nb: 1\n", true),
                ("a: '${V}'\nb: 1\n", true),
                ("a: ${V}\nb: 1\n", false),
                ("a: \"pre-${V}-post\"\nb: 1\n", true),
                ("a: [\"${V}\"]\nb: 1\n", true),
            ] {
                let Ok(out) = expand(template, &e) else {
                    // Refused: fine, as long as a quoted reference is refused only for a
                    // line break in single quotes or an empty value.
                    assert!(
                        !quoted
                            || value.is_empty()
                            || (template.contains('\'') && value.contains('\n')),
                        "{template:?} with {value:?} refused"
                    );
                    continue;
                };
                let Ok(doc) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&out) else {
                    // Unparseable is refused later, never a different document.
                    continue;
                };
                let map = doc.as_mapping().unwrap();
                assert_eq!(map.len(), 2, "{template:?} with {value:?}: {out}");
                assert_eq!(doc["b"], serde_yaml_ng::Value::from(1));
                let got = match &doc["a"] {
                    serde_yaml_ng::Value::Sequence(s) => s[0].as_str().map(str::to_string),
                    other => other.as_str().map(str::to_string),
                };
                if template.contains("pre-") {
                    assert_eq!(got.unwrap(), format!("pre-{value}-post"));
                } else if quoted {
                    assert_eq!(got.as_deref(), Some(value), "{template:?}: {out}");
                } else if let Some(got) = got {
                    assert_eq!(got, value, "{template:?}: {out}");
                }
            }
        }
    }
}
