//! The line each key of the config file is on, so that an error names it
//! (`actbridge.yaml:14: config key `outbound.routes[2].audience`: …`). Keys are written
//! as errors name them: `outbound.routes[2].audience`, `credentials[0].github_app.owner`.
//!
//! Read with `yaml-rust2`'s event parser, which gives each event's position; serde's
//! YAML deserializer keeps none past a syntax error.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path → line (1-based).
pub(crate) struct KeyLines(HashMap<String, usize>);

impl KeyLines {
    /// The lines of every key and list item in `text`; none when it does not parse.
    pub(crate) fn of(text: &str) -> KeyLines {
        let mut walker = Walker::default();
        let _ = Parser::new_from_str(text).load(&mut walker, false);
        KeyLines(walker.lines)
    }

    /// The line of `key`, else of the nearest key above it that is in the file (a
    /// required key that is missing is reported at its parent).
    pub(crate) fn line_of(&self, key: &str) -> Option<usize> {
        let mut key = key;
        loop {
            if let Some(line) = self.0.get(key) {
                return Some(*line);
            }
            let cut = key.rfind(['.', '['])?;
            key = &key[..cut];
        }
    }
}

enum Frame {
    /// In a mapping: the key being read or whose value is being read.
    Mapping { key: Option<String> },
    /// In a sequence: the index of the next item.
    Sequence { next: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    lines: HashMap<String, usize>,
}

impl Walker {
    /// The path of the node about to be read, given the frames above it.
    fn path(&self) -> String {
        let mut out = String::new();
        for frame in &self.stack {
            match frame {
                Frame::Mapping { key: Some(k) } => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Frame::Mapping { key: None } => {}
                Frame::Sequence { next } => out.push_str(&format!("[{next}]")),
            }
        }
        out
    }

    /// A node (scalar, alias or collection start) at `line`: a mapping's key, or a value.
    /// Returns whether it was a key.
    fn node(&mut self, scalar: Option<&str>, line: usize) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key }) if key.is_none() => {
                // A key; only scalar keys name anything.
                *key = Some(scalar.unwrap_or("?").to_string());
                let path = self.path();
                self.lines.entry(path).or_insert(line);
                true
            }
            Some(Frame::Sequence { .. }) => {
                let path = self.path();
                self.lines.entry(path).or_insert(line);
                false
            }
            _ => false,
        }
    }

    /// A value finished: the mapping waits for its next key, the sequence counts on.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key }) => *key = None,
            Some(Frame::Sequence { next }) => *next += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            // A scalar or an alias that is a value ends it; as a key, the value follows.
            Event::Scalar(value, ..) if !self.node(Some(&value), line) => self.value_done(),
            Event::Alias(_) if !self.node(None, line) => self.value_done(),
            Event::MappingStart(..) => {
                self.node(None, line);
                self.stack.push(Frame::Mapping { key: None });
            }
            Event::SequenceStart(..) => {
                self.node(None, line);
                self.stack.push(Frame::Sequence { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_item_has_its_line() {
        let text = "listen:\n  ext_proc: tcp://127.0.0.1:9001\nissuers:\n  - issuer: a\n    audiences: [x, y]\n  - issuer: b\noutbound:\n  routes:\n    - {host: a, action: exchange}\n    - host: b\n      action: deny\n";
        let lines = KeyLines::of(text);
        for (key, line) in [
            ("listen", 1),
            ("listen.ext_proc", 2),
            ("issuers", 3),
            ("issuers[0]", 4),
            ("issuers[0].issuer", 4),
            ("issuers[0].audiences", 5),
            ("issuers[0].audiences[1]", 5),
            ("issuers[1].issuer", 6),
            ("outbound.routes[0].action", 9),
            ("outbound.routes[1].host", 10),
            ("outbound.routes[1].action", 11),
        ] {
            assert_eq!(lines.line_of(key), Some(line), "{key}");
        }
        // A key that is not there (a required one, missing) is found at its parent.
        assert_eq!(lines.line_of("outbound.routes[1].audience"), Some(10));
        assert_eq!(lines.line_of("nowhere.at.all"), None);
        // A file that stops parsing: the lines up to there, no panic.
        let cut = KeyLines::of("a: 1\nb: [\n  {");
        assert_eq!(cut.line_of("a"), Some(1));
        assert_eq!(cut.line_of("c"), None);
    }
}
