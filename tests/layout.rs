//! The layers stay apart (docs/development.md, "Where a change goes"): what
//! each folder of `src/` imports from the crate, read from the source.
//! `api` and `rules` import nothing from `aws`, `controller` or `ops`, the
//! steps of the reconciler name what they use (no glob imports), no
//! module imports, through any chain, a module that imports it, and the
//! LoginProfile reconciler's steps hand values forward: none imports a
//! later one, and only the report step writes status, Events and metrics.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

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

/// Every `.rs` file under `src/{folder}`, subfolders included, as
/// (`src/…` path, text).
fn sources(folder: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, relative: &str, files: &mut Vec<(String, String)>) {
        for entry in fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{relative}/{name}");
            if entry.path().is_dir() {
                walk(&entry.path(), &path, files);
            } else if name.ends_with(".rs") {
                files.push((path, fs::read_to_string(entry.path()).unwrap()));
            }
        }
    }
    let mut files = Vec::new();
    let relative = format!("src/{folder}").trim_end_matches('/').to_string();
    walk(
        &Path::new(ROOT).join("src").join(folder),
        &relative,
        &mut files,
    );
    files.sort();
    assert!(!files.is_empty(), "src/{folder} has no source");
    files
}

/// The module a file under `src/` defines, as a path from the crate root:
/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`. The crate roots (`lib.rs`,
/// `main.rs`) are not modules of the graph.
fn module_of(path: &str) -> Option<String> {
    let inside = path.strip_prefix("src/")?.strip_suffix(".rs")?;
    if inside == "lib" || inside == "main" {
        return None;
    }
    let inside = inside.strip_suffix("/mod").unwrap_or(inside);
    Some(inside.replace('/', "::"))
}

/// The paths a text names from `crate::`, `super::` and `self::`, with each
/// `{…}` group expanded, as (prefix, path segments). A file's own `mod
/// tests` is left out: its `super` is the file itself.
fn paths_named(text: &str) -> Vec<(String, Vec<String>)> {
    let text = &without_test_modules(text);
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let starts_path = at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b':');
        let prefix = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|p| starts_path && rest.starts_with(p));
        let Some(prefix) = prefix else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut leading = vec![prefix.trim_end_matches("::").to_string()];
        let mut tail = &rest[prefix.len()..];
        while let Some(more) = tail.strip_prefix("super::") {
            leading.push("super".into());
            tail = more;
        }
        let mut trees = Vec::new();
        expand(tail, Vec::new(), &mut trees);
        for segments in trees {
            found.push((leading.join("::"), segments));
        }
        at += prefix.len();
    }
    found
}

/// `text` without its `#[cfg(test)] mod … { … }` blocks (brace-matched).
fn without_test_modules(text: &str) -> String {
    let mut kept = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]\nmod ") {
        kept.push_str(&rest[..at]);
        let block = &rest[at..];
        let open = block.find('{').unwrap_or(block.len());
        let mut depth = 0;
        let mut end = block.len();
        for (i, c) in block[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &block[end..];
    }
    kept.push_str(rest);
    kept
}

/// Expands `a::b::{c, d::e}` into `[a, b, c]` and `[a, b, d, e]`.
fn expand(text: &str, mut path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut rest = text;
    loop {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut entry = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(entry.trim(), path.clone(), out);
                            entry.clear();
                            continue;
                        }
                        _ => {}
                    }
                    entry.push(c);
                }
                if !entry.trim().is_empty() {
                    expand(entry.trim(), path.clone(), out);
                }
                return;
            }
            break;
        }
        rest = &rest[name.len()..];
        path.push(name);
        match rest.strip_prefix("::") {
            Some(more) => rest = more,
            None => break,
        }
    }
    if !path.is_empty() {
        out.push(path);
    }
}

/// Which modules of the crate each module imports (itself left out).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, String, bool)> = sources("")
        .into_iter()
        .filter_map(|(path, text)| {
            let is_folder = path.ends_with("/mod.rs");
            module_of(&path).map(|module| (module, text, is_folder))
        })
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(m, _, _)| m.clone()).collect();
    let mut graph = BTreeMap::new();
    for (module, text, _) in &files {
        let mut parent: Vec<&str> = module.split("::").collect();
        let mut imported = BTreeSet::new();
        for (prefix, segments) in paths_named(text) {
            let mut base: Vec<String> = match prefix.split("::").next() {
                Some("crate") => Vec::new(),
                _ => parent.iter().map(|s| s.to_string()).collect(),
            };
            for step in prefix.split("::") {
                if step == "super" {
                    base.pop();
                }
            }
            let mut full = base;
            full.extend(segments);
            // The longest prefix of the path that is a module.
            let target = (1..=full.len())
                .rev()
                .map(|n| full[..n].join("::"))
                .find(|candidate| modules.contains(candidate));
            if let Some(target) = target
                && target != *module
            {
                imported.insert(target);
            }
        }
        parent.clear();
        graph.insert(module.clone(), imported);
    }
    graph
}

/// A chain of imports from `from` back to `to`, if there is one.
fn path_between(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    to: &str,
) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(chain) = stack.pop() {
        let last = chain.last().expect("never empty").clone();
        if last == to {
            return Some(chain);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in graph.get(&last).into_iter().flatten() {
            let mut longer = chain.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    None
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

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let graph = import_graph();
    assert!(
        graph.contains_key("controller::login_profile::act"),
        "the graph reads the folders: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    let mut circles = Vec::new();
    for (module, imported) in &graph {
        for target in imported {
            if let Some(back) = path_between(&graph, target, module) {
                circles.push(format!("{module} -> {}", back.join(" -> ")));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

/// The LoginProfile reconciler's steps, in the order `apply` calls them.
const STEPS: [&str; 6] = ["admit", "observe", "governance", "decide", "act", "report"];

/// The step a module belongs to (a step's folder counts as the step).
fn step_of(module: &str) -> Option<usize> {
    let below = module.strip_prefix("controller::login_profile::")?;
    let first = below.split("::").next()?;
    STEPS.iter().position(|step| *step == first)
}

#[test]
fn no_step_imports_a_later_step() {
    let graph = import_graph();
    for step in STEPS {
        assert!(
            graph.contains_key(&format!("controller::login_profile::{step}")),
            "the step {step} is where the list says"
        );
    }
    let mut forward = Vec::new();
    for (module, imported) in &graph {
        let Some(at) = step_of(module) else { continue };
        for target in imported {
            if let Some(later) = step_of(target).filter(|to| *to > at) {
                forward.push(format!(
                    "{module} ({}) imports {target} ({})",
                    STEPS[at], STEPS[later]
                ));
            }
        }
    }
    assert!(
        forward.is_empty(),
        "a step imports a later one (return a value for it instead):\n{}",
        forward.join("\n")
    );
}

#[test]
fn only_the_report_step_writes_status_events_and_metrics() {
    // The act step's own bookkeeping (finalizer, marks, `settle_marks`)
    // is its business; what a step found is the report step's to write.
    let writers = ["patch_status", "note_event", "events.publish", ".metrics"];
    let mut writing = Vec::new();
    for (path, text) in sources("controller/login_profile") {
        let module = module_of(&path).expect("a module");
        let Some(at) = step_of(&module) else { continue };
        let text = without_test_modules(&text);
        for writer in writers {
            if STEPS[at] != "report" && text.contains(writer) {
                writing.push(format!("{path} ({}) names {writer}", STEPS[at]));
            }
        }
    }
    assert!(
        writing.is_empty(),
        "steps before report write what they should hand forward:\n{}",
        writing.join("\n")
    );
}

#[test]
fn the_graph_resolves_crate_super_and_grouped_paths() {
    let text = "use super::report::{fail, note};\nuse crate::{api::reason::Reason, controller::runtime::{context::Context, looks}};\nfn f() { super::super::runtime::watch::x(); }\n#[cfg(test)]\nmod bounds {\n    use super::*;\n    fn g() { if true { crate::ops::x(); } }\n}\nfn h() { self::inner::y(); }";
    let named: Vec<(String, String)> = paths_named(text)
        .into_iter()
        .map(|(prefix, path)| (prefix, path.join("::")))
        .collect();
    let expect = |p: &str, s: &str| (p.to_string(), s.to_string());
    assert_eq!(
        named,
        [
            expect("super", "report::fail"),
            expect("super", "report::note"),
            expect("crate", "api::reason::Reason"),
            expect("crate", "controller::runtime::context::Context"),
            expect("crate", "controller::runtime::looks"),
            expect("super::super", "runtime::watch::x"),
            expect("self", "inner::y"),
        ]
    );
    assert_eq!(
        module_of("src/controller/login_profile/mod.rs").as_deref(),
        Some("controller::login_profile")
    );
    assert_eq!(
        module_of("src/controller/runtime/looks.rs").as_deref(),
        Some("controller::runtime::looks")
    );
    assert_eq!(module_of("src/lib.rs"), None);
}
