//! The config file's JSON Schema (docs/actbridge.schema.json, generated from the raw
//! config types): the shipped copy is what `actbridge config-schema` prints, every config
//! the project ships satisfies it, and it refuses what `check-config` refuses in shape
//! (a misspelt key or closed value, a wrong type).

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_actbridge"))
        .arg("config-schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let shipped = std::fs::read_to_string(root().join("docs/actbridge.schema.json")).unwrap();
    assert!(
        printed == shipped,
        "docs/actbridge.schema.json is stale: run `cargo run -- config-schema > docs/actbridge.schema.json`"
    );
    serde_json::from_str(&printed).unwrap()
}

/// The YAML at `path` as JSON.
fn yaml(path: &Path) -> serde_json::Value {
    serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_shipped_config_satisfies_the_shipped_schema() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let configs = [
        "demo/actbridge.yaml",
        "deploy/actbridge.yaml",
        "manifests/base/config/actbridge.yaml",
        "manifests/overlays/demo/actbridge.yaml",
        "manifests/overlays/keycloak/actbridge.yaml",
    ];
    for config in configs {
        let doc = yaml(&root().join(config));
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{config}: {errors:#?}");
    }
}

#[test]
fn the_schema_refuses_a_misspelt_key_or_value_and_a_wrong_type() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let good = yaml(&root().join("demo/actbridge.yaml"));
    assert!(validator.is_valid(&good));
    let mut misspelt_value = good.clone();
    misspelt_value["outbound"]["routes"][0]["action"] = "exchnage".into();
    let mut unknown_key = good.clone();
    unknown_key["outbound"]["routes"][0]["colour"] = "red".into();
    let mut wrong_type = good.clone();
    wrong_type["issuers"] = "one".into();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("listen");
    for (what, doc, at) in [
        ("a misspelt action", misspelt_value, "/outbound/routes/0"),
        ("an unknown key", unknown_key, "/outbound/routes/0"),
        ("issuers not a list", wrong_type, "/issuers"),
        ("listen missing", missing, ""),
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| e.instance_path().to_string())
            .collect();
        // Refused at the key, or at an optional section holding it (`anyOf` of the
        // section and null fails as a whole).
        assert!(
            errors.iter().any(|p| at.starts_with(p.as_str())),
            "{what}: {errors:?}"
        );
    }
}

/// `n` with `$ref`s followed and an optional's `anyOf [x, null]` read as `x`.
fn resolve<'a>(
    schema: &'a serde_json::Value,
    mut n: &'a serde_json::Value,
) -> &'a serde_json::Value {
    loop {
        if let Some(r) = n["$ref"].as_str() {
            n = &schema["$defs"][r.rsplit('/').next().unwrap_or_default()];
            continue;
        }
        let not_null: Vec<&serde_json::Value> = n["anyOf"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["type"] != "null").collect())
            .unwrap_or_default();
        if not_null.len() == 1 {
            n = not_null[0];
            continue;
        }
        return n;
    }
}

/// Every key path of the schema under `node` (lists as `[]`), leaves only.
fn key_paths(
    schema: &serde_json::Value,
    node: &serde_json::Value,
    prefix: &str,
    out: &mut Vec<String>,
) {
    let n = resolve(schema, node);
    if n["type"] == "array" && resolve(schema, &n["items"])["properties"].is_object() {
        return key_paths(schema, &n["items"], &format!("{prefix}[]"), out);
    }
    match n["properties"].as_object() {
        Some(props) => {
            for (k, v) in props {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                key_paths(schema, v, &p, out);
            }
        }
        None => out.push(prefix.to_string()),
    }
}

/// The keys docs/configuration.md's tables document, as full paths: each `### `section``
/// and the first cell of each row (`a` / `b`, `a`, `b`, `x.a` / `.b`, `x_file` / `_env`).
fn documented_keys() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    let mut section: Option<String> = None;
    let mut out = Vec::new();
    for line in doc.lines() {
        if let Some(rest) = line.strip_prefix("### `") {
            section = rest.split('`').next().map(str::to_string);
            continue;
        }
        if line.starts_with("## ") {
            section = None;
        }
        let (Some(sec), Some(row)) = (&section, line.strip_prefix("| `")) else {
            continue;
        };
        let cell = row.split(" | ").next().unwrap_or_default();
        let mut previous = String::new();
        for part in cell.split(" / ").flat_map(|p| p.split(", ")) {
            let part = part.trim().trim_matches('`');
            let key = if let Some(tail) = part.strip_prefix('.') {
                let parent = previous.rsplit_once('.').map_or("", |(p, _)| p);
                format!("{parent}.{tail}")
                    .trim_start_matches('.')
                    .to_string()
            } else if let Some(tail) = part.strip_prefix('_') {
                let stem = previous.rsplit_once('_').map_or("", |(s, _)| s);
                format!("{stem}_{tail}")
            } else if !part.contains('.') && previous.contains('.') {
                let parent = previous.rsplit_once('.').map_or("", |(p, _)| p);
                format!("{parent}.{part}")
            } else {
                part.to_string()
            };
            out.push(format!("{sec}.{key}").replace("[].", "[]."));
            previous = key;
        }
    }
    out
}

/// The key tables of docs/configuration.md cover every key of the config, and name no
/// key that does not exist.
#[test]
fn the_configuration_reference_documents_every_key_and_only_keys() {
    let schema = schema();
    let mut keys = Vec::new();
    key_paths(&schema, &schema, "", &mut keys);
    assert!(keys.len() > 150, "{keys:?}");
    let plain = |k: &str| k.replace("[]", "");
    let documented: Vec<String> = documented_keys().iter().map(|k| plain(k)).collect();
    let covered = |key: &str| {
        let key = plain(key);
        documented
            .iter()
            .any(|d| *d == key || key.starts_with(&format!("{d}.")))
    };
    let undocumented: Vec<&String> = keys.iter().filter(|k| !covered(k)).collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/configuration.md: {undocumented:#?}"
    );
    let known: Vec<String> = keys.iter().map(|k| plain(k)).collect();
    let exists = |d: &str| {
        known
            .iter()
            .any(|k| k == d || k.starts_with(&format!("{d}.")))
    };
    let stray: Vec<&String> = documented.iter().filter(|d| !exists(d)).collect();
    assert!(
        stray.is_empty(),
        "documented but not config keys: {stray:#?}"
    );
}
