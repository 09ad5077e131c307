mod capability;
mod client_auth;
mod config_cli;
mod envoy_config;
mod extproc_transport;
mod inbound;
mod outbound;
mod policy;
