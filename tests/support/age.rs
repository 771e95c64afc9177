//! The age CLI (filippo.io/age, built by hack/tools.sh) as a person uses it:
//! a new key pair, and decrypting what the operator delivered.

use std::path::{Path, PathBuf};

use super::{env, run_with_stdin, stdout_of, unique};

/// A new age identity in `dir`: (its file, its public key `age1…`).
pub fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    stdout_of(
        env()
            .command("age-keygen")
            .arg("-o")
            .arg(&path)
            .output()
            .expect("age-keygen runs"),
        "age-keygen",
    );
    let public = stdout_of(
        env()
            .command("age-keygen")
            .arg("-y")
            .arg(&path)
            .output()
            .expect("age-keygen -y runs"),
        "age-keygen -y",
    );
    (path, public.trim().to_string())
}

/// A new directory of the test's own, for its keys.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(test));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `age -d -i identity` over the status ciphertext: the password, or age's
/// refusal.
pub fn age_decrypt(ciphertext: &str, identity: &Path) -> Result<String, String> {
    let mut command = env().command("age");
    command.arg("-d").arg("-i").arg(identity);
    let output = run_with_stdin(command, ciphertext);
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("utf-8"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
