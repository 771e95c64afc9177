//! docs/install.md as a platform engineer follows it: every shell block of
//! the page, in order, run by bash against the environment and its node,
//! with only the changes listed in [`CHANGES`] (the registry, EKS and the
//! IAM emulator's address stand in for what only AWS has). The page's
//! values file is written as it says, the release installs and rolls out
//! by the image's digest, the IAMAccount `default` admits what step 3b
//! says and converges a LoginProfile, the upgrade applies the CRDs and
//! rolls, and the uninstall removes everything, console access included.
//!
//! The page installs the release `loginprofile-operator` in
//! `loginprofile-system`, the IAMAccount `default` and, when uninstalling,
//! deletes every LoginProfile, every IAMAccount and the CRDs: make test
//! runs this binary alone, after the others of its group, and the next
//! test binary applies the CRDs and the environment's IAMAccount again.

mod support;

use std::fs;

use serde_json::json;
use support::*;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/loginprofile-operator");
const PAGE: &str = include_str!("../docs/install.md");
/// How long one block may take (a rollout on the node included).
const BLOCK_DEADLINE: &str = "300";

/// What the test changes in the page, and why: (the page's text, what runs
/// instead). Each must be found in the page, so a page that changes fails
/// here until this list follows it.
const CHANGES: &[(&str, &str)] = &[
    // The registry: the image is loaded into the node by the environment
    // (hack/devenv.sh load-image) under `localhost/loginprofile-operator`,
    // and the chart is this checkout's; `dist/` holds only IMAGE_DIGEST.
    (
        "REGISTRY=registry.example.com/platform",
        "REGISTRY=localhost",
    ),
    ("cd dist && sha256sum -c SHA256SUMS\n", "cd dist\n"),
    (
        "skopeo copy oci-archive:loginprofile-operator-$VERSION.oci.tar docker://$REGISTRY/loginprofile-operator:$VERSION\n",
        "",
    ),
    (
        "helm push loginprofile-operator-$VERSION.tgz oci://$REGISTRY/charts\n",
        "",
    ),
    (
        "oci://$REGISTRY/charts/loginprofile-operator --version $VERSION",
        "$CHART",
    ),
    (
        "helm pull oci://$REGISTRY/charts/loginprofile-operator --version $NEW --untar --untardir chart-$NEW",
        "mkdir -p chart-$NEW && cp -r $CHART chart-$NEW/",
    ),
    (
        "oci://$REGISTRY/charts/loginprofile-operator --version $NEW",
        "$CHART",
    ),
    // The IAM emulator's address and credentials for the Pod, where EKS
    // would give the role of step 2a.
    (
        "-f values-prod.yaml\n",
        "-f values-prod.yaml -f \"$LOCAL_VALUES\"\n",
    ),
    (
        "-f values-prod.yaml   # with the new image's digest in it",
        "-f values-prod.yaml -f \"$LOCAL_VALUES\"",
    ),
];

/// Blocks not run: EKS Pod Identity is step 2a's alternative, and EKS is
/// not emulated.
const SKIPPED: &[&str] = &["aws eks create-pod-identity-association"];

/// The page's ```sh blocks, in order.
fn shell_blocks(page: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The page's blocks with [`CHANGES`] made, [`SKIPPED`] left out; panics
/// naming a change the page no longer has the text for.
fn blocks_to_run() -> Vec<String> {
    let mut page = PAGE.to_string();
    for (from, to) in CHANGES {
        assert!(
            page.contains(from),
            "docs/install.md no longer says {from:?}: update CHANGES in tests/install.rs"
        );
        page = page.replace(from, to);
    }
    shell_blocks(&page)
        .into_iter()
        .filter(|block| !SKIPPED.iter().any(|skipped| block.contains(skipped)))
        .collect()
}

/// The image's manifest digest, as `make release` writes IMAGE_DIGEST.
fn image_digest() -> String {
    let archive = format!("{ROOT}/target/devenv/node/images/operator.tar");
    let script = "import json, sys, tarfile\n\
                  with tarfile.open(sys.argv[1]) as a: print(json.load(a.extractfile('index.json'))['manifests'][0]['digest'])";
    let output = env()
        .command("python3")
        .args(["-c", script, &archive])
        .output()
        .unwrap();
    stdout_of(output, "the image's digest").trim().to_string()
}

/// What a run before this one may have left, and the environment's own
/// IAMAccount `default`, which the chart's takes the place of. Objects
/// other tests left behind (a namespace still terminating after its
/// operator stopped) keep finalizers no running operator removes, and the
/// page's uninstall waits for every LoginProfile and RootLoginProfile to
/// go: their finalizers are cleared first (this binary runs alone). An
/// object can even outlive its namespace (the namespace controller once
/// finished while the API server restarted under it), and the API server
/// takes no write in a namespace that is gone: it is made again for the
/// patch.
fn clear_the_way() {
    let env = env();
    for kind in ["loginprofiles", "rootloginprofiles", "iamaccounts"] {
        let names = env.kubectl_ok(&[
            "get",
            kind,
            "-A",
            "-o",
            "jsonpath={range .items[*]}{.metadata.namespace}{\" \"}{.metadata.name}{\"\\n\"}{end}",
        ]);
        for line in names.lines() {
            let mut parts = line.split_whitespace().rev();
            let (Some(name), namespace) = (parts.next(), parts.next()) else {
                continue;
            };
            let mut args = vec![
                "patch",
                kind,
                name,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ];
            if let Some(namespace) = namespace {
                args.extend(["-n", namespace]);
            }
            let patched = env.kubectl(&args);
            if let Some(namespace) = namespace
                && String::from_utf8_lossy(&patched.stderr)
                    .contains(&format!("namespaces \"{namespace}\" not found"))
            {
                let _ = env.kubectl(&["create", "namespace", namespace]);
                let _ = env.kubectl(&args);
                let _ = env.kubectl(&["delete", "namespace", namespace, "--wait=false"]);
            }
        }
    }
    let _ = env.kubectl(&[
        "patch",
        "iamaccount",
        "default",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let _ = env.kubectl(&["delete", "iamaccount", "default", "--ignore-not-found"]);
    let _ = env.kubectl(&[
        "delete",
        "namespace",
        "loginprofile-system",
        "team-a",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=120s",
    ]);
    let _ = env.aws(&[
        "iam",
        "delete-policy",
        "--policy-arn",
        "arn:aws:iam::123456789012:policy/loginprofile-operator",
    ]);
}

#[test]
fn the_install_page_works_in_order_from_install_to_uninstall() {
    image_loaded();
    clear_the_way();
    let work = std::env::temp_dir().join(unique("install-page"));
    fs::create_dir_all(work.join("dist")).unwrap();
    fs::write(work.join("dist/IMAGE_DIGEST"), image_digest() + "\n").unwrap();
    std::os::unix::fs::symlink(format!("{ROOT}/docs"), work.join("docs")).unwrap();
    let local_values = work.join("local-values.yaml");
    let iam_endpoint = env().vars["LPO_NODE_IAM_ENDPOINT"].clone();
    fs::write(
        &local_values,
        json!({"extraEnv": [
            {"name": "AWS_ENDPOINT_URL", "value": iam_endpoint},
            {"name": "AWS_ACCESS_KEY_ID", "value": "testing"},
            {"name": "AWS_SECRET_ACCESS_KEY", "value": "testing"},
        ]})
        .to_string(),
    )
    .unwrap();

    let blocks = blocks_to_run();
    let (install, rest): (Vec<_>, Vec<_>) = blocks
        .iter()
        .partition(|block| !block.contains("kubectl delete loginprofiles --all -A"));
    // One bash for the install and upgrade steps (their variables carry
    // over, as in the reader's shell); the uninstall after the check.
    let run = |script: &str| {
        let output = env()
            .command("timeout")
            .args([BLOCK_DEADLINE, "bash", "-euo", "pipefail", "-c", script])
            .current_dir(&work)
            .env("CHART", CHART)
            .env("LOCAL_VALUES", &local_values)
            .output()
            .unwrap();
        stdout_of(output, &format!("docs/install.md's commands:\n{script}"))
    };
    let (steps, upgrade): (Vec<&String>, Vec<&String>) = install
        .into_iter()
        .partition(|block| !block.contains("helm upgrade"));
    let printed = run(&steps.iter().map(|b| b.as_str()).collect::<String>());
    assert!(
        printed.contains("default"),
        "kubectl get iamaccounts:\n{printed}"
    );
    let values = fs::read_to_string(work.join("values-prod.yaml")).unwrap();
    assert!(values.contains("digest: sha256:"), "{values}");
    wait_account_ready("default", "True", "Verified");

    // What step 3b admits converges: a user of team-a, in team-a.
    env().kubectl_ok(&["create", "namespace", "team-a"]);
    let mut users = TestUsers::default();
    let user = users.create("team-a-install");
    let password = strong_password("install");
    env().apply_ok(&secret("team-a", "alice", &[("password", &password)]));
    env().apply_ok(&login_profile(
        "team-a",
        "alice",
        json!({"userName": user, "passwordSecretRef": {"name": "alice"}}),
    ));
    wait_ready_reason("team-a", "alice", "True", "Created", CONVERGE);
    iam_profile(&user).expect("the installed operator made the login profile");

    run(&upgrade.iter().map(|b| b.as_str()).collect::<String>());
    wait_ready_reason("team-a", "alice", "True", "Created", CONVERGE);

    run(&rest.iter().map(|b| b.as_str()).collect::<String>());
    wait_until(
        "the login profile deleted with its LoginProfile",
        CONVERGE,
        || iam_profile(&user).is_err(),
    );
    let crds = env().kubectl_ok(&["get", "crd", "-o", "name"]);
    assert!(!crds.contains("iam.loginprofile.dev"), "{crds}");
    let _ = env().kubectl(&[
        "delete",
        "namespace",
        "team-a",
        "loginprofile-system",
        "--wait=false",
    ]);
    let _ = fs::remove_dir_all(&work);
}
