//! Edits a sidecar config by key, not by text: `String::replace` on a config does nothing
//! when the text it looks for has moved, and the test then runs on the unedited config.
//! Here a path that does not lead to a key fails the test, naming the path.
//!
//! A path is dotted keys; a list element is chosen by index (`routes[0]`) or by a key's
//! value (`routes[host=document-service]`):
//!
//! ```ignore
//! let config = ConfigEdit::of(&sidecar_config(&sts))
//!     .set("outbound.token_timeout", "1s")
//!     .set("outbound.routes[host=document-service].single_use", "true")
//!     .remove("inbound.token_custody")
//!     .yaml();
//! ```

use serde_yaml_ng::{Mapping, Value};

/// A config being edited.
pub struct ConfigEdit(Value);

/// One step of a path.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
    Where(&'a str, &'a str),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(sel) = rest.strip_prefix('[') {
            // A selector may hold dots (`clients[client_id=spiffe://a.example/b]`).
            let end = sel
                .find(']')
                .unwrap_or_else(|| panic!("`{path}`: unclosed ["));
            let sel_text = &sel[..end];
            out.push(match sel_text.split_once('=') {
                Some((k, v)) => Step::Where(k, v),
                None => Step::Index(
                    sel_text
                        .parse()
                        .unwrap_or_else(|_| panic!("`{path}`: bad index")),
                ),
            });
            rest = sel[end + 1..].strip_prefix('.').unwrap_or(&sel[end + 1..]);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Step::Key(&rest[..end]));
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    out
}

fn child<'v>(v: &'v mut Value, step: &Step<'_>, path: &str) -> &'v mut Value {
    let found = match (step, v) {
        (Step::Key(k), Value::Mapping(m)) => m.get_mut(*k),
        (Step::Index(i), Value::Sequence(s)) => s.get_mut(*i),
        (Step::Where(k, want), Value::Sequence(s)) => s
            .iter_mut()
            .find(|e| e.get(*k).and_then(Value::as_str) == Some(*want)),
        _ => None,
    };
    found.unwrap_or_else(|| panic!("config edit: `{path}` leads nowhere"))
}

impl ConfigEdit {
    /// The config `yaml`, to be edited.
    pub fn of(yaml: &str) -> ConfigEdit {
        ConfigEdit(serde_yaml_ng::from_str(yaml).expect("the config to edit is YAML"))
    }

    /// The mapping holding the last key of `path`, and that key.
    fn parent<'p>(&mut self, path: &'p str) -> (&mut Mapping, &'p str) {
        let mut steps = steps(path);
        let Some(Step::Key(last)) = steps.pop() else {
            panic!("config edit: `{path}` must end with a key")
        };
        let mut v = &mut self.0;
        for s in &steps {
            v = child(v, s, path);
        }
        match v {
            Value::Mapping(m) => (m, last),
            _ => panic!("config edit: `{path}`'s parent is not a mapping"),
        }
    }

    /// Sets `path` to `value` (YAML text: `1s`, `true`, `{method: jwt_svid}`, `[a, b]`).
    /// Every step but the last must exist.
    pub fn set(mut self, path: &str, value: &str) -> ConfigEdit {
        let value: Value = serde_yaml_ng::from_str(value).expect("the value is YAML");
        let (m, key) = self.parent(path);
        m.insert(Value::from(key), value);
        self
    }

    /// Replaces `path`, which must exist, with `value` (as [`ConfigEdit::set`]).
    pub fn replace(mut self, path: &str, value: &str) -> ConfigEdit {
        let (m, key) = self.parent(path);
        assert!(m.contains_key(key), "config edit: `{path}` is not set");
        self.set(path, value)
    }

    /// Appends `value` (as [`ConfigEdit::set`]) to the list at `path`, which must exist.
    pub fn push(mut self, path: &str, value: &str) -> ConfigEdit {
        let value: Value = serde_yaml_ng::from_str(value).expect("the value is YAML");
        let mut v = &mut self.0;
        for s in &steps(path) {
            v = child(v, s, path);
        }
        match v {
            Value::Sequence(s) => s.push(value),
            _ => panic!("config edit: `{path}` is not a list"),
        }
        self
    }

    /// Removes `path`, which must exist.
    pub fn remove(mut self, path: &str) -> ConfigEdit {
        let (m, key) = self.parent(path);
        assert!(m.remove(key).is_some(), "config edit: `{path}` is not set");
        self
    }

    /// The edited config.
    pub fn yaml(&self) -> String {
        serde_yaml_ng::to_string(&self.0).unwrap()
    }
}
