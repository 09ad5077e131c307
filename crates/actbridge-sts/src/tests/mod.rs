//! Tests of the token service, each against a real server on 127.0.0.1:0 over HTTP.

mod client_auth;
mod delegation;
mod discovery;
mod exchange;
mod grants;
mod introspection;
mod jwt_svid;
mod private_key_jwt;
mod realm_file;
mod support;
