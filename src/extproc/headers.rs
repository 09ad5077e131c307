//! Reading Envoy's header maps and writing header mutations.

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::ext_proc::v3::HeaderMutation;

use crate::pipeline::Mutations;

/// The headers of an Envoy `HeaderMap` as (lower-case name, raw value) pairs. Current
/// Envoy sends values in `raw_value`; older ones in `value`.
pub(super) fn read(map: Option<HeaderMap>) -> Vec<(String, Vec<u8>)> {
    let Some(map) = map else { return Vec::new() };
    map.headers
        .into_iter()
        .map(|h| {
            let value = if h.raw_value.is_empty() {
                h.value.into_bytes()
            } else {
                h.raw_value
            };
            (h.key.to_ascii_lowercase(), value)
        })
        .collect()
}

/// The ext_proc filter's key in `ProcessingRequest.attributes`.
const EXT_PROC_ATTRIBUTES: &str = "envoy.filters.http.ext_proc";

/// The route and cluster Envoy chose, from the attributes the filter sends
/// (`request_attributes: [xds.route_name, xds.cluster_name]`); `None` for one it did not
/// send or sent empty (a route without a cluster, like a `direct_response`).
pub(super) fn route_attributes(
    attributes: &std::collections::HashMap<String, envoy_types::pb::google::protobuf::Struct>,
) -> (Option<String>, Option<String>) {
    use envoy_types::pb::google::protobuf::value::Kind;
    let Some(fields) = attributes.get(EXT_PROC_ATTRIBUTES).map(|s| &s.fields) else {
        return (None, None);
    };
    let text = |name: &str| match fields.get(name).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    (text("xds.route_name"), text("xds.cluster_name"))
}

/// One header to set, replacing existing values.
pub(super) fn set_option(name: &str, value: &[u8]) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_string(),
            value: String::new(),
            raw_value: value.to_vec(),
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

/// The Envoy form of the core's mutations. Values are already validated `http` types,
/// so no CR/LF can get here.
pub(super) fn mutation(m: &Mutations) -> Option<HeaderMutation> {
    if m.set.is_empty() && m.remove.is_empty() {
        return None;
    }
    Some(HeaderMutation {
        set_headers: m
            .set
            .iter()
            .map(|(k, v)| set_option(k.as_str(), v.as_bytes()))
            .collect(),
        remove_headers: m.remove.iter().map(|k| k.as_str().to_string()).collect(),
    })
}
