//! The resources people write and read: types only, no I/O. Every doc
//! comment on a field is `kubectl explain` text; the condition vocabulary
//! (reasons, kstatus conditions) lives here too.

pub mod conditions;
pub mod governance;
pub mod iam_account;
pub mod login_profile;
pub mod reason;
pub mod root_login_profile;
pub mod sample;
pub mod schema;
