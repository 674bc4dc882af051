//! Every relative link in the repository's Markdown resolves: the file exists inside the
//! repository, and an anchor (`file.md#section`, `#section`) names a heading of that file, by
//! GitHub's rules for heading anchors. Links to other sites are not checked.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
};

/// The Markdown files users read: the root's, `docs/`, and each crate's and workspace's README.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [root.to_path_buf(), root.join("docs")] {
        let entries = fs::read_dir(&dir).expect("readable directory");
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    for readme in [
        "entity/README.md",
        "migration/README.md",
        "cli/README.md",
        "benches/README.md",
        "interop/README.md",
        "examples/pavex_app/README.md",
    ] {
        let path = root.join(readme);
        if path.exists() {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// GitHub's anchor for a heading: lower case, only letters, digits, `-`, `_` and spaces kept,
/// spaces turned into `-`; a repeated anchor gets `-1`, `-2`, ...
fn anchors(markdown: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#').trim();
        let slug: String = text
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut candidate = slug.clone();
        let mut n = 0;
        while seen.contains(&candidate) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
        seen.insert(candidate);
    }
    seen
}

/// The targets of inline links `[text](target)` outside code blocks and code spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Drop code spans, whose brackets are not links.
        let text: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = text.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .expect("the repository");
    let mut broken = Vec::new();
    let files = markdown_files(&root);
    assert!(files.len() > 10, "found only {files:?}");
    for file in &files {
        let markdown = fs::read_to_string(file).expect("UTF-8 Markdown");
        for target in link_targets(&markdown) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let linked = match path {
                "" => file.clone(),
                path => file.parent().expect("a directory").join(path),
            };
            let Ok(linked) = linked.canonicalize() else {
                broken.push(format!("{}: {target}: no such file", file.display()));
                continue;
            };
            if !linked.starts_with(&root) {
                broken.push(format!(
                    "{}: {target}: outside the repository",
                    file.display()
                ));
                continue;
            }
            if let Some(anchor) = anchor {
                let Ok(text) = fs::read_to_string(&linked) else {
                    broken.push(format!("{}: {target}: not a text file", file.display()));
                    continue;
                };
                if !anchors(&text).contains(anchor) {
                    broken.push(format!("{}: {target}: no such heading", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn anchors_follow_githubs_rules() {
    let anchors =
        anchors("# Why it said PostgreSQL 1.07–1.10\n## `load` and `update`\n## A\n## A\n");
    for expected in [
        "why-it-said-postgresql-107110",
        "load-and-update",
        "a",
        "a-1",
    ] {
        assert!(anchors.contains(expected), "{expected} not in {anchors:?}");
    }
}
