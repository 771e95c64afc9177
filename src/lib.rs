//! loginprofile-operator: keeps IAM console passwords (login profiles) in the
//! state that `LoginProfile` resources declare, with passwords from Secrets.
//!
//! The folders name the layers (docs/development.md, "Where a change goes"):
//! `api` the resources people write and read, `rules` the pure decisions,
//! `aws` the AWS services and the per-account clients, `controller` the
//! reconcilers and their watches, `ops` what running it takes. `api` and
//! `rules` import nothing from `aws`, `controller` or `ops`.
#![forbid(unsafe_code)]

pub mod api;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod ops;
pub mod reference;
pub mod rules;
