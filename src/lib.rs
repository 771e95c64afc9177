//! loginprofile-operator: keeps IAM console passwords (login profiles) in the
//! state that `LoginProfile` resources declare, with passwords from Secrets.
#![forbid(unsafe_code)]

pub mod account;
pub mod aws_accounts;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod drift;
pub mod events;
pub mod fingerprint_key;
pub mod http;
pub mod iam;
pub mod iam_account;
pub mod leader;
pub mod marks;
pub mod metrics;
pub mod password;
pub mod plan;
pub mod policy;
pub mod reason;
pub mod sample;
pub mod secrets_manager;
pub mod source;
pub mod status;
pub mod telemetry;
pub mod tenancy;
