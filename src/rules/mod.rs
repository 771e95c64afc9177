//! Pure decisions, table-tested, no I/O: the plan for a LoginProfile, who is
//! admitted where, the password and the account password policy,
//! console-access governance, the encryption of a generated password for its
//! recipients (age in `delivery.rs`, OpenPGP in `openpgp.rs`), and what the
//! operator's own crash-safety marks may be believed to say.

pub mod admission;
pub mod delivery;
pub mod governance;
pub mod marks;
pub mod openpgp;
pub mod password;
pub mod password_policy;
pub mod plan;
