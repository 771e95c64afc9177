//! The container image's contents without a Docker engine: the Dockerfile
//! passes hadolint, and the static binary it ships (built by `make
//! image-binary`, the same script the Dockerfile runs) is static and works.

mod support;

use std::process::Command;

/// The static binary in the same Cargo target directory as this test's
/// own build (`CARGO_TARGET_DIR` or target/).
fn static_binary() -> String {
    let debug_binary = std::path::Path::new(env!("CARGO_BIN_EXE_loginprofile-operator"));
    let target_dir = debug_binary
        .parent()
        .and_then(|p| p.parent())
        .expect("<target>/debug/<binary>");
    target_dir
        .join("x86_64-unknown-linux-musl/release/loginprofile-operator")
        .display()
        .to_string()
}

#[test]
fn dockerfile_passes_hadolint_and_builds_with_the_shared_script() {
    let output = support::env()
        .command("hadolint")
        .arg(format!("{}/Dockerfile", support::ROOT))
        .output()
        .expect("hadolint runs (installed into target/devenv/venv)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let dockerfile = std::fs::read_to_string(format!("{}/Dockerfile", support::ROOT)).unwrap();
    assert!(dockerfile.contains("RUN hack/image-binary.sh"));
    assert!(dockerfile.contains("FROM gcr.io/distroless/static-debian12:nonroot"));
    assert!(dockerfile.contains("USER 65532:65532"));
    for label in ["source", "version", "licenses"] {
        assert!(
            dockerfile.contains(&format!("org.opencontainers.image.{label}=")),
            "label {label}"
        );
    }
}

#[test]
fn static_binary_is_static_and_runs() {
    let binary = static_binary();
    let ldd = Command::new("ldd").arg(&binary).output().expect("ldd runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "{binary} is not static (run `make image-binary`): {said}"
    );
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "loginprofile-operator 0.1.0"
    );
    let crd = Command::new(&binary).arg("crd").output().unwrap();
    let committed =
        std::fs::read(format!("{}/crds/loginprofile-operator.yaml", support::ROOT)).unwrap();
    assert!(
        crd.stdout == committed,
        "the static binary prints the committed CRD"
    );
}
