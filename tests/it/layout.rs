//! The shape of the source tree: no two modules of `src/` import each other, directly or
//! around a circle (issue 10). A module is a file (`a/b.rs` or `a/b/mod.rs` is `a::b`); an import
//! is any `crate::` or `super::` path outside comments, resolved to the longest module prefix. A
//! module's own children and ancestors do not count: a parent declares its children, and a child
//! may use its parent's re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The module a path names, from module `at`: `crate::a::b::Item` or `super::b::Item`.
fn resolve(at: &[String], path: &str, modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    let mut segs = path.split("::");
    let mut base: Vec<String> = match segs.next()? {
        "crate" => Vec::new(),
        "super" => at[..at.len().saturating_sub(1)].to_vec(),
        _ => return None,
    };
    let rest: Vec<&str> = segs.collect();
    let mut i = 0;
    while rest.get(i) == Some(&"super") {
        base.pop();
        i += 1;
    }
    let rest = &rest[i..];
    (0..=rest.len()).rev().find_map(|n| {
        let mut m = base.clone();
        m.extend(rest[..n].iter().map(|s| s.to_string()));
        modules.contains(&m).then_some(m)
    })
}

/// Paths starting with `crate::` or `super::` in `code` (comments stripped).
fn paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        for start in ["crate::", "super::"] {
            let mut rest = line;
            while let Some(i) = rest.find(start) {
                let before = rest[..i].chars().next_back();
                let tail = &rest[i..];
                let end =
                    tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
                if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    out.push(tail[..end].trim_end_matches(':').to_string());
                }
                rest = &tail[end.max(1)..];
            }
        }
    }
    out
}

#[test]
fn no_module_of_src_imports_around_a_circle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&root, f)).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in &files {
        let at = module_of(&root, file);
        let code = std::fs::read_to_string(file).unwrap();
        // Unit tests inside a module may reach anywhere.
        let code = code.split("#[cfg(test)]").next().unwrap_or("");
        for path in paths(code) {
            let Some(to) = resolve(&at, &path, &modules) else { continue };
            let related = to.starts_with(&at) || at.starts_with(&to);
            if !related {
                edges.entry(at.clone()).or_default().insert(to);
            }
        }
    }
    // A circle exists iff some module reaches itself.
    for start in &modules {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<(Vec<String>, Vec<Vec<String>>)> = vec![(start.clone(), vec![start.clone()])];
        while let Some((m, trail)) = stack.pop() {
            for next in edges.get(&m).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = trail.iter().map(|p| p.join("::")).collect();
                    panic!("import circle: {} -> {}", names.join(" -> "), start.join("::"));
                }
                if seen.insert(next.clone()) {
                    let mut t = trail.clone();
                    t.push(next.clone());
                    stack.push((next.clone(), t));
                }
            }
        }
    }
}

/// Issue 12: the crate embedders link has no async runtime, gRPC or etcd dependency; the
/// networked process lives in `cluster/`. Checked on Cargo.lock's resolved graph: nothing reached
/// from `dispatcher-core`'s normal dependencies is one of them.
#[test]
fn the_library_depends_on_no_runtime_grpc_or_etcd_crate() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).and_then(|s| s.split("\n[").next()).unwrap();
    // Direct dependencies of the library.
    let direct: Vec<&str> = deps
        .lines()
        .filter_map(|l| l.split('=').next())
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.starts_with('#'))
        .collect();
    // The lock file's graph: package name -> its dependencies' names.
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let name =
            block.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_owned();
        let deps: Vec<String> = block
            .split("dependencies = [")
            .nth(1)
            .map(|d| {
                d.split(']')
                    .next()
                    .unwrap()
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').split(' ').next().unwrap().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        graph.entry(name).or_default().extend(deps);
    }
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = direct.iter().map(|s| s.to_string()).collect();
    while let Some(name) = stack.pop() {
        if seen.insert(name.clone()) {
            stack.extend(graph.get(&name).cloned().unwrap_or_default());
        }
    }
    assert!(
        seen.contains("prost") && seen.contains("papaya"),
        "the walk found the library's graph: {seen:?}"
    );
    for banned in ["tokio", "tonic", "hyper", "h2", "etcd-client"] {
        assert!(!seen.contains(banned), "{banned} is reached from the library's dependencies");
    }
}
