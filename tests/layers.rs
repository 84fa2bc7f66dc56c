//! The shape of the code, checked: layers point down only (no module imports one above
//! it, so there are no circles), nothing below `commands` knows clap's structs, and no
//! function outside tests is longer than 80 lines. Read from the sources as text: the
//! `crate::` paths each module uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules of `src/`, highest first. A module may use only modules after it.
const LAYERS: &[&str] = &[
    // Completion answers for the commands, from their definitions.
    "complete",
    "commands",
    "cli",
    // Every release planned at once (list reads, then the run's policy choice and the planner).
    "fleet",
    // The release's history rendered from the ledger's record (pure).
    "history",
    "run",
    "ui",
    "release",
    "catalog",
    "helm",
    "kube",
    "report",
    "plan",
    "policy",
    "version",
    // What a hop changes in the rendered manifest and values (pure; the plan carries it).
    "diff",
    "signals",
    "terminal",
    "printer",
    "env",
    "disclose",
    "setvalues",
    "sensitive",
    "text",
    "digest",
    "duration",
    "names",
    "exit",
];

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

/// The code of a file without its test module (tests may reach anywhere).
fn non_test_code(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return None;
    }
    let text = std::fs::read_to_string(path).unwrap();
    Some(text.split("#[cfg(test)]").next().unwrap_or_default().to_string())
}

/// The top-level module a file belongs to: `src/run/walk.rs` → `run`.
fn module_of(src: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::name` a text mentions, `use crate::{a, b}` groups included.
fn crate_uses(text: &str) -> BTreeSet<String> {
    let ident =
        |s: &str| -> String { s.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            for item in group[..group.find('}').unwrap_or(group.len())].split(',') {
                found.insert(ident(item));
            }
        } else {
            found.insert(ident(after));
        }
        rest = after;
    }
    found.retain(|n| !n.is_empty() && n != "self");
    found
}

#[test]
fn modules_only_use_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let module = module_of(&src, path);
        if module == "main" || module == "lib" {
            continue;
        }
        let Some(code) = non_test_code(path) else { continue };
        for used in crate_uses(&code) {
            if used != module {
                graph.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m).unwrap_or_else(|| panic!("module {m} is not in LAYERS"));
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(module, uses)| uses.iter().map(move |used| (module, used)))
        .filter(|(module, used)| rank(used) <= rank(module))
        .map(|(module, used)| format!("{module} → {used}"))
        .collect();
    assert!(upward.is_empty(), "imports that point up (or sideways), which make circles: {upward:?}");
    // Nothing below `commands` (and completion, its sibling) sees clap's structs.
    let cli_users: Vec<&String> = graph
        .iter()
        .filter(|(m, uses)| uses.contains("cli") && !["commands", "complete"].contains(&m.as_str()))
        .map(|(m, _)| m)
        .collect();
    assert!(cli_users.is_empty(), "{cli_users:?} import cli");
}

#[test]
fn every_function_is_under_80_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut long = Vec::new();
    for path in &files {
        let Some(code) = non_test_code(path) else { continue };
        let lines: Vec<&str> = code.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let starts = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn ", "const fn ", "pub const fn "];
            if !starts.iter().any(|p| trimmed.starts_with(p)) {
                continue;
            }
            // The body ends at the first line that is the closing brace at the same indent.
            let opens = |j: &usize| lines[*j].trim_end().ends_with('{') || lines[*j].trim_end().ends_with(';');
            let Some(start) = (i..lines.len()).find(opens) else { continue };
            if lines[start].trim_end().ends_with(';') {
                continue; // a declaration without a body (a trait's)
            }
            let close = format!("{indent}}}");
            if let Some(end) = (start + 1..lines.len()).find(|&j| lines[j] == close) {
                let length = end - i + 1;
                if length >= 80 {
                    long.push(format!("{}:{} ({length} lines): {trimmed}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(long.is_empty(), "functions of 80 lines or more: {long:#?}");
}

/// One owner each: stdout and stderr are the printer's (it knows the terminal, colour,
/// width and a closed pipe), the environment the `env` table's (and the kubeconfig
/// reader's, which follows the Kubernetes client's own variables).
#[test]
fn output_and_environment_have_one_owner_each() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut strays = Vec::new();
    for path in &files {
        let Some(code) = non_test_code(path) else { continue };
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        for (n, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            let prints = ["println!", "eprintln!", "print!(", "eprint!("].iter().any(|p| line.contains(p));
            if prints && rel != "printer.rs" {
                strays.push(format!("{rel}:{}: prints outside the printer", n + 1));
            }
            let reads_env = line.contains("env::var(") || line.contains("env::var_os(") || line.contains("env::vars(");
            if reads_env && !["env.rs", "kube/config.rs"].contains(&rel.as_str()) {
                strays.push(format!("{rel}:{}: reads the environment outside crate::env", n + 1));
            }
        }
    }
    assert!(strays.is_empty(), "{strays:#?}");
}

/// The code without its comments (a doc link to a sibling is not an import).
fn without_comments(code: &str) -> String {
    code.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// The first segment of every path that starts right after `prefix` in `text`: `prefix`
/// `values::Overrides` gives `values`; a group `{a::X, b, c::{Y, Z}}` gives `a`, `b`, `c`.
fn first_segments(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        // `super::super::x` is read from its last `super::` by the caller's prefix; skip a
        // match that is the tail of a longer path (`a::super::` does not occur in Rust).
        let before = &rest[..i];
        let after = &rest[i + prefix.len()..];
        rest = after;
        if before.ends_with("::") || before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // The group's top-level items, nested groups skipped by depth.
            let (mut depth, mut item) = (0usize, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.insert(ident(item.trim()));
        } else {
            found.insert(ident(after));
        }
    }
    found.retain(|n| !n.is_empty() && n != "self");
    found
}

/// A cycle in `graph` (a list of its nodes, first repeated last), if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Within each top-level module, its submodules (`run::backup`, `run::values`, …; a
/// folder's files belong to the folder's submodule: `run/ledger/lock.rs` is
/// `run::ledger`) import each other without circles. An import is a `super::name` or
/// `crate::module::name` path naming a sibling submodule, outside comments and tests;
/// what the parent's `mod.rs` declares itself (and the `mod.rs` file's own uses, which
/// wire its submodules together) are not counted.
#[test]
fn submodules_import_each_other_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut cycles = Vec::new();
    for top in LAYERS {
        let dir = src.join(top);
        if !dir.is_dir() {
            continue;
        }
        let mut children: BTreeSet<String> = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let is_module = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
            if is_module && !["mod", "tests", "snapshots"].contains(&stem.as_str()) {
                children.insert(stem);
            }
        }
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for path in files.iter().filter(|p| p.starts_with(&dir)) {
            let rel: Vec<String> = path
                .strip_prefix(&dir)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if rel == ["mod"] {
                continue;
            }
            let Some(code) = non_test_code(path) else { continue };
            let code = without_comments(&code);
            let child = rel[0].clone();
            // `super::` reaches the siblings from `top/child.rs`; from `top/child/x.rs` it
            // is the child itself, and `super::super::` the siblings.
            let sibling_prefix = if rel.len() == 1 { "super::" } else { "super::super::" };
            let mut used = first_segments(&code, &format!("crate::{top}::"));
            used.extend(first_segments(&code, sibling_prefix));
            used.retain(|u| u != &child && children.contains(u));
            graph.entry(child).or_default().extend(used);
        }
        if let Some(cycle) = find_cycle(&graph) {
            cycles.push(cycle.iter().map(|c| format!("{top}::{c}")).collect::<Vec<_>>().join(" → "));
        }
    }
    assert!(cycles.is_empty(), "import circles among submodules: {cycles:#?}");
}

/// The string literals of some code, comments left out: `"a \"b\""` gives `a \"b\"`.
/// Raw strings (`r"…"`, `r#"…"#`) and char literals (`'"'`) are read as such.
fn string_literals(code: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    let starts_with = |i: usize, s: &str| s.chars().enumerate().all(|(k, c)| chars.get(i + k) == Some(&c));
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
        }
        if starts_with(i, "//") {
            // To the end of the line, whose newline is counted above on the next turn.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i += 3; // a char literal such as '"'
            continue;
        } else if c == '\'' && chars.get(i + 1) == Some(&'\\') {
            i += 2; // '\\', '\'', '\"': the escape, then the rest is plain
            continue;
        } else if c == 'r' && (starts_with(i + 1, "\"") || starts_with(i + 1, "#\"")) && !prev_is_ident(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let start = i + 2 + hashes;
            let mut end = start;
            while end < chars.len() && !starts_with(end, &close) {
                end += 1;
            }
            let text: String = chars[start..end.min(chars.len())].iter().collect();
            line += text.matches('\n').count();
            out.push((line, text));
            i = end + close.len();
            continue;
        } else if c == '"' {
            let mut end = i + 1;
            while end < chars.len() && chars[end] != '"' {
                end += if chars[end] == '\\' { 2 } else { 1 };
            }
            let text: String = chars[i + 1..end.min(chars.len())].iter().collect();
            out.push((line, text.clone()));
            line += text.matches('\n').count();
            i = end + 1;
            continue;
        }
        i += 1;
    }
    out
}

/// Whether `code` (whitespace made single spaces) holds an array or `vec!` of several
/// words whose first is the literal `word`: `["history", "-o", "json"]`,
/// `vec!["get".to_string(), …]`. An index (`pod["status"]`) and a one-word list
/// (`&["version"]`, a placeholder's name) are not argv.
fn starts_an_argv(code: &str, word: &str) -> bool {
    let literal = format!("\"{word}\"");
    code.match_indices(&literal).any(|(at, _)| {
        let before = code[..at].trim_end();
        let Some(opening) = before.strip_suffix('[') else { return false };
        let indexes = opening.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ']' || c == ')');
        let mut after = code[at + literal.len()..].trim_start();
        for conversion in [".into()", ".to_string()", ".to_owned()"] {
            after = after.strip_prefix(conversion).unwrap_or(after);
        }
        let more = after.strip_prefix(',').is_some_and(|rest| !rest.trim_start().starts_with(']'));
        (!indexes || opening.ends_with("vec!")) && more
    })
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_ascii_alphanumeric() || chars[i - 1] == '_')
}

/// helm's argv is built in the process layer (`helm.rs`) only, from typed requests: no
/// other file spells a flag of helm's as a string of its own (`"--reuse-values"`,
/// `"--version"`, `"-f"`, `"--dry-run=server"`), or starts an argv with a helm command
/// (`["history", …`, `vec!["upgrade".into(), …`). Flags inside a message (`"name it with
/// --to"`) are text, not argv. The tool's own command line, whose flags mirror helm's
/// (`cli.rs`, `commands.rs` and completion), and the operator's set-lines
/// (`setvalues.rs`, which names `--set*` as the operator typed them) may spell them.
#[test]
fn helm_argv_is_built_in_the_process_layer_only() {
    const HELM_FLAGS: &[&str] = &[
        "--version",
        "--plain-http",
        "--wait",
        "--timeout",
        "--force-conflicts",
        "--reuse-values",
        "--reset-values",
        "--reset-then-reuse-values",
        "--revision",
        "--namespace",
        "-n",
        "--kube-context",
        "--dry-run",
        "--install",
        "--atomic",
        "--rollback-on-failure",
        "--values",
        "-f",
        "-o",
        "--output",
        "--destination",
        "--devel",
        "--versions",
        "--max",
        "--all-namespaces",
        "--deployed",
        "--failed",
        "--pending",
        "--template",
        "--set",
        "--set-string",
        "--set-json",
        "--set-file",
        "--set-literal",
    ];
    const HELM_COMMANDS: &[&str] = &[
        "upgrade",
        "rollback",
        "history",
        "status",
        "get",
        "pull",
        "repo",
        "search",
        "list",
        "install",
        "uninstall",
        "template",
        "version",
        "show",
    ];
    const MAY_SPELL: &[&str] = &["helm.rs", "cli.rs", "commands.rs", "complete.rs", "setvalues.rs"];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut strays = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if MAY_SPELL.contains(&rel.as_str()) {
            continue;
        }
        let Some(code) = non_test_code(path) else { continue };
        for (line, text) in string_literals(&code) {
            let flag = text.split('=').next().unwrap_or_default();
            if HELM_FLAGS.contains(&flag) {
                strays.push(format!("{rel}:{line}: helm's flag \"{text}\" outside helm.rs"));
            }
        }
        let flat: String = without_comments(&code).split_whitespace().collect::<Vec<_>>().join(" ");
        for command in HELM_COMMANDS {
            if starts_an_argv(&flat, command) {
                strays.push(format!("{rel}: an argv that starts with helm's {command:?} outside helm.rs"));
            }
        }
    }
    assert!(strays.is_empty(), "{strays:#?}");
}

#[test]
fn the_argv_heuristics_read_rust_as_written() {
    assert!(starts_an_argv("let a = vec![\"upgrade\".to_string(), \"--wait\".into()];", "upgrade"));
    assert!(starts_an_argv("helm.run(&[ \"history\", \"-o\", \"json\"])", "history"));
    assert!(!starts_an_argv("pod[\"status\"][\"phase\"]", "status"), "an index");
    assert!(!starts_an_argv("placeholders(&[\"version\"])", "version"), "one word");
    let code = "let s = \"a \\\"b\\\"\"; // \"-f\"\nlet c = '\"'; let r = r#\"-o\"#;\nlet t = \"--wait\";";
    let found: Vec<(usize, String)> = string_literals(code);
    let expected = [(1, "a \\\"b\\\""), (2, "-o"), (3, "--wait")].map(|(l, t)| (l, t.to_string()));
    assert_eq!(found, expected);
}
