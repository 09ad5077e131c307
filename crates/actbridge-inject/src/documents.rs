//! A multi-document YAML stream split into its documents, each with its original text
//! (so objects passed through come back exactly as written, comments included).

/// One document of the input.
#[derive(Debug, Clone)]
pub(super) struct Chunk {
    /// 1-based position among the input's documents (empty ones counted).
    pub index: usize,
    /// 1-based line of the input where the document starts (its `---` marker, if any).
    pub line: usize,
    /// The document's text, without its `---` marker.
    pub text: String,
}

/// Splits `input` at its document markers: a line `---` (optionally followed by
/// content, which belongs to the new document) or `...` (end of a document). At column
/// 0 these are always markers in YAML, never scalar content.
pub(super) fn split(input: &str) -> Vec<Chunk> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut chunks = Vec::new();
    let mut text = String::new();
    let mut start = 1;
    let mut ended = false;
    for (n, line) in input.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some(rest) = document_start(bare) {
            if !ended {
                push(&mut chunks, &mut text, start);
            }
            start = n + 1;
            ended = false;
            if !rest.trim().is_empty() {
                text.push_str(rest.trim_start());
                text.push('\n');
            }
        } else if bare == "..." {
            push(&mut chunks, &mut text, start);
            ended = true;
        } else if !ended {
            text.push_str(line);
        }
    }
    if !ended {
        push(&mut chunks, &mut text, start);
    }
    chunks
}

/// `Some(rest)` when `line` starts a document: `---` alone or followed by a blank.
fn document_start(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---")?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

fn push(chunks: &mut Vec<Chunk>, text: &mut String, line: usize) {
    let taken = std::mem::take(text);
    if taken.trim().is_empty() && chunks.is_empty() && line == 1 {
        return; // nothing before the first marker
    }
    chunks.push(Chunk {
        index: chunks.len() + 1,
        line,
        text: taken,
    });
}

/// The document's original text, ending in exactly one newline and without the blank
/// lines that surrounded it.
pub(super) fn verbatim(chunk: &Chunk) -> String {
    let body = chunk.text.trim_matches(['\n', '\r']);
    format!("{body}\n")
}
