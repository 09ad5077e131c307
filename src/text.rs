//! Text bounded for records and for what a person is shown: a peer's or caller's
//! string never makes a log line, audit record or approval listing unboundedly long.

/// `s` cut to at most `max` bytes (at a character boundary), marked `…[N bytes]` with its
/// whole length when cut.
pub(crate) fn bounded(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}…[{} bytes]", &s[..end], s.len()))
}
