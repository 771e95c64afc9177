//! What the reconcilers share: the context every reconcile reads
//! (`context.rs`), the watches and caches (`watch.rs`, `tenancy.rs`), what is
//! remembered per object (`memory.rs`), which LoginProfiles name which IAM
//! user (`claims.rs`), which generations were passed on (`generations.rs`),
//! when each LoginProfile is looked at again (`looks.rs`), and the IAM
//! events that wake them (`iam_events.rs`).

pub(crate) mod claims;
pub(crate) mod context;
pub(crate) mod event_flow;
pub(crate) mod generations;
pub(crate) mod iam_events;
pub(crate) mod looks;
pub(crate) mod memory;
pub(crate) mod tenancy;
pub(crate) mod watch;
