//! The container image's contents without a Docker engine: the Dockerfile
//! passes hadolint, and the static binary it ships (built by `make
//! image-binary`, the same script the Dockerfile runs) is static and works.

mod support;

use std::process::Command;

use support::static_binary;

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
        format!("loginprofile-operator {}", env!("CARGO_PKG_VERSION"))
    );
    let crd = Command::new(&binary).arg("crd").output().unwrap();
    let committed =
        std::fs::read(format!("{}/crds/loginprofile-operator.yaml", support::ROOT)).unwrap();
    assert!(
        crd.stdout == committed,
        "the static binary prints the committed CRD"
    );
}

/// One file of a tar archive (the `tar` the machine has).
fn tar_member(archive: &std::path::Path, member: &str) -> Vec<u8> {
    let output = Command::new("tar")
        .arg("-xOf")
        .arg(archive)
        .arg(member)
        .output()
        .expect("tar runs");
    assert!(output.status.success(), "{member} in {}", archive.display());
    output.stdout
}

fn blob_path(descriptor: &serde_json::Value) -> String {
    let digest = descriptor["digest"].as_str().unwrap();
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// The image the node runs (hack/oci-image.py) is what the Dockerfile's
/// final stage makes: its config is compared with the Dockerfile's own
/// instructions, read here independently, so the two cannot drift.
#[test]
fn oci_image_archive_matches_the_dockerfile() {
    let archive = std::path::Path::new(support::ROOT).join("target/test-logs/oci-image-test.tar");
    let written = Command::new("python3")
        .arg(format!("{}/hack/oci-image.py", support::ROOT))
        .arg(static_binary())
        .arg(&archive)
        .output()
        .expect("python3 runs");
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let index: serde_json::Value =
        serde_json::from_slice(&tar_member(&archive, "index.json")).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&tar_member(&archive, &blob_path(&index["manifests"][0]))).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&tar_member(&archive, &blob_path(&manifest["config"]))).unwrap();
    let config = &config["config"];

    // The Dockerfile's final stage, instruction by instruction.
    let dockerfile = std::fs::read_to_string(format!("{}/Dockerfile", support::ROOT)).unwrap();
    let final_stage = &dockerfile[dockerfile.rfind("\nFROM ").unwrap()..];
    let instruction = |keyword: &str| {
        final_stage
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{keyword} ")))
            .unwrap_or_else(|| panic!("the Dockerfile's final stage has {keyword}"))
            .trim()
            .to_string()
    };
    let json = |text: String| serde_json::from_str::<serde_json::Value>(&text).unwrap();
    assert_eq!(config["Entrypoint"], json(instruction("ENTRYPOINT")));
    assert_eq!(config["Cmd"], json(instruction("CMD")));
    assert_eq!(config["User"], instruction("USER"));
    let port = instruction("EXPOSE");
    assert_eq!(
        config["ExposedPorts"],
        serde_json::json!({format!("{port}/tcp"): {}})
    );
    for label in ["title", "source", "version", "licenses"] {
        let key = format!("org.opencontainers.image.{label}");
        assert!(
            final_stage.contains(&format!("{key}=")),
            "the Dockerfile sets {key}"
        );
        assert!(
            config["Labels"][&key].is_string(),
            "the image carries {key}"
        );
    }

    // The one layer holds the binary where COPY puts it, the user, the CAs.
    let copy_to = final_stage
        .lines()
        .find(|line| line.starts_with("COPY "))
        .and_then(|line| line.split_whitespace().last())
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    let layer_path =
        std::path::Path::new(support::ROOT).join("target/test-logs/oci-image-layer.tar");
    std::fs::write(
        &layer_path,
        tar_member(&archive, &blob_path(&manifest["layers"][0])),
    )
    .unwrap();
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&layer_path)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(&copy_to)),
        "{listing}"
    );
    assert_eq!(
        tar_member(&layer_path, &copy_to),
        std::fs::read(static_binary()).unwrap(),
        "the layer's binary is the static binary"
    );
    let passwd = String::from_utf8(tar_member(&layer_path, "etc/passwd")).unwrap();
    assert!(passwd.contains(":65532:65532:"), "{passwd}");
    assert!(!tar_member(&layer_path, "etc/ssl/certs/ca-certificates.crt").is_empty());
}
