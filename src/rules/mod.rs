//! Pure decisions, table-tested, no I/O: the plan for a LoginProfile, who is
//! admitted where, the password and the account password policy,
//! console-access governance, the encryption of a generated password for its
//! recipients (age in `delivery.rs`, OpenPGP in `openpgp.rs`), what the
//! operator's own crash-safety marks may be believed to say, and root's
//! login profile in a member account (`root.rs`), and what an IAM event
//! delivered through SQS is about (`iam_events.rs`).

pub mod admission;
pub mod delivery;
pub mod governance;
pub mod iam_events;
pub mod marks;
pub mod openpgp;
pub mod ownership;
pub mod password;
pub mod password_policy;
pub mod plan;
pub mod root;
