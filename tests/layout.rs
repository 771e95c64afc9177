//! The layers stay apart (docs/development.md, "Where a change goes"): what
//! each folder of `src/` imports from the crate, read from the source.
//! `api` and `rules` import nothing from `aws`, `controller` or `ops`, and
//! the steps of the reconciler name what they use (no glob imports).

use std::{collections::BTreeSet, fs, path::Path};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The crate's top-level modules that `text` names: `crate::x::…` and the
/// first-level entries of `use crate::{x::…, y, …}`.
fn crate_modules_used(text: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(block) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut entry = String::new();
            let mut entries = Vec::new();
            for c in block.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => entries.push(std::mem::take(&mut entry)),
                    _ if depth == 1 => entry.push(c),
                    _ => {}
                }
            }
            entries.push(entry);
            for entry in entries {
                let name: String = entry
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    used.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            used.insert(name);
        }
    }
    used
}

fn sources(folder: &str) -> Vec<(String, String)> {
    let dir = Path::new(ROOT).join("src").join(folder);
    let mut files: Vec<(String, String)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "rs"))
        .map(|entry| {
            (
                format!("src/{folder}/{}", entry.file_name().to_string_lossy()),
                fs::read_to_string(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "src/{folder} has no source");
    files
}

#[test]
fn api_and_rules_import_nothing_from_aws_controller_or_ops() {
    for (folder, allowed) in [("api", &["api"][..]), ("rules", &["api", "rules"][..])] {
        for (path, text) in sources(folder) {
            for module in crate_modules_used(&text) {
                assert!(
                    allowed.contains(&module.as_str()),
                    "{path} imports crate::{module}: {folder}/ may import only {allowed:?}"
                );
            }
        }
    }
}

#[test]
fn aws_and_ops_do_not_reach_into_the_controller() {
    for folder in ["aws", "ops"] {
        for (path, text) in sources(folder) {
            assert!(
                !crate_modules_used(&text).contains("controller"),
                "{path} imports the controller"
            );
        }
    }
}

#[test]
fn the_check_reads_use_blocks_and_paths() {
    let text = "use crate::{\n    api::reason::Reason,\n    aws::{iam::Iam, clients},\n};\nfn f() { crate::ops::metrics::x(); }";
    assert_eq!(
        crate_modules_used(text),
        BTreeSet::from(["api".to_string(), "aws".to_string(), "ops".to_string()])
    );
}
