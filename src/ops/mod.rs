//! What running the operator takes: leader election, the HTTP endpoints,
//! metrics, logging, Kubernetes Events, and the key behind fingerprints and
//! seals.

pub mod events;
pub mod fingerprint_key;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod telemetry;
