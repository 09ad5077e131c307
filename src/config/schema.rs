//! The config file's JSON Schema, generated from the raw config types with `schemars`
//! (their doc comments become its descriptions): `actbridge config-schema` prints it, and
//! `docs/actbridge.schema.json` ships it for editors (the YAML language server:
//! `# yaml-language-server: $schema=…`). `make test` checks the shipped copy is current
//! and that every shipped config satisfies it.
//!
//! The schema says the file's shape — keys, types, closed sets, which keys are required
//! — and the defaults where a key's own type has one; the rules that tie keys together
//! (`credential` routes need `policy`, the deadlines) are `check-config`'s.

use super::RawConfig;

/// The schema, pretty-printed, ending with a newline.
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(RawConfig);
    schema.insert("$id".into(), "urn:actbridge:config".into());
    schema.insert("title".into(), "actbridge configuration".into());
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
