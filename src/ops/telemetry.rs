//! Logging through `tracing`, as text or JSON lines, filtered by `RUST_LOG`
//! syntax.

use clap::ValueEnum;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax, for
/// example `info` or `loginprofile_operator=debug,kube=info`.
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter =
        EnvFilter::try_new(filter).map_err(|e| format!("invalid --log-filter {filter:?}: {e}"))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry.with(fmt::layer().with_target(true)).try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true))
            .try_init(),
    };
    result.map_err(|e| e.to_string())
}
