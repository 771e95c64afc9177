//! AWS, behind narrow interfaces: one module per service the operator calls
//! (IAM, Secrets Manager; STS through the client set; root access through
//! STS AssumeRoot in `root.rs`; the SQS queue of IAM's events in
//! `event_queue.rs`), the client set of
//! each IAMAccount (credentials, rate limit, drift budget), and the facts
//! cached per AWS account (password policy, credential report).

pub mod account_facts;
pub mod clients;
pub mod deletion_pacer;
pub mod drift_budget;
pub mod error_text;
pub mod event_queue;
pub mod iam;
pub mod root;
pub mod secrets_manager;
