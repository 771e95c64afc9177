//! The controllers: the LoginProfile reconciler and its steps
//! (`login_profile/`), the IAMAccount reconciler (`iam_account.rs`), the
//! RootLoginProfile one (`root_login_profile.rs`), and what they share
//! (`runtime/`).

mod iam_account;
mod login_profile;
mod root_login_profile;
mod runtime;

pub use login_profile::secret_source;
pub use runtime::context::{Context, Error, FIELD_MANAGER, Settings};
pub use runtime::watch::run;
