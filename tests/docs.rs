//! The README says what the code does: its table of environment variables is the code's
//! own table (`helm_safe_upgrade::env::VARIABLES`), row for row.

#[test]
fn the_readme_lists_every_environment_variable_the_tool_reads() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section =
        readme.split("### Environment variables").nth(1).expect("a README section `### Environment variables`");
    let rows: Vec<(String, String)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| variable"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells[1].to_string())
        })
        .collect();
    let expected: Vec<(String, String)> =
        helm_safe_upgrade::env::VARIABLES.iter().map(|v| (v.name.to_string(), v.meaning.replace('|', "\\|"))).collect();
    assert_eq!(rows, expected, "regenerate the README table from src/env.rs");
}

/// The README's offline examples (`--from`, no cluster) run as written and succeed: a
/// newcomer's first command must not fail.
#[test]
fn the_readmes_offline_examples_run() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let examples: Vec<&str> = readme
        .lines()
        .map(|l| l.trim_start_matches("$ ").trim())
        .filter(|l| l.starts_with("helm safe-") && l.contains("--from ") && l.contains("--plan"))
        .collect();
    assert!(examples.len() >= 5, "the README's offline examples: {examples:?}");
    for example in examples {
        let words: Vec<&str> = example.split('#').next().unwrap().split_whitespace().collect();
        let mode = if words[1] == "safe-rollback" { "safe-rollback" } else { "safe-upgrade" };
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_helm-safe-upgrade"))
            .args(&words[2..])
            .env("HELM_PLUGIN_NAME", mode)
            .env_remove("HELM_NAMESPACE")
            .output()
            .unwrap();
        assert!(out.status.success(), "`{example}` failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    }
}

/// The facts the code relies on are said where they are used (a comment, the README),
/// not cited by section from a document this repository does not hold.
#[test]
fn no_file_cites_a_document_outside_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    let mut citing = Vec::new();
    for file in String::from_utf8_lossy(&out.stdout).lines() {
        let code = [".rs", ".sh", ".py", ".yaml", ".complete", ".toml"].iter().any(|e| file.ends_with(e));
        let Ok(text) = std::fs::read_to_string(root.join(file)) else { continue };
        if !code {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            // Spelt apart so that this file does not cite it either.
            let name = ["helm", "facts"].join("-");
            let section =
                line.contains('§') && line.chars().skip_while(|c| *c != '§').nth(1).is_some_and(|c| c.is_ascii_digit());
            if line.contains(&name) || section {
                citing.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(citing.is_empty(), "say the fact instead of citing it:\n{}", citing.join("\n"));
}

/// The README's `--plan --diff` transcript is the e2e snapshot of a real run (both helms,
/// tests/e2e_acme_chart.rs), word for word: when the output changes, the snapshot is
/// reviewed and the README follows, or this fails.
#[test]
fn the_readmes_plan_diff_transcript_is_the_e2e_snapshot() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let name = "tests/snapshots/e2e_acme_chart__acme_plan_diff.snap";
    let intro = format!("snapshot `{name}`");
    let after = readme.split(&intro).nth(1).unwrap_or_else(|| panic!("the README names {name}"));
    let block = after.split("```\n").nth(1).expect("a code block after the snapshot's name");
    let snapshot = std::fs::read_to_string(format!("{root}/{name}")).unwrap();
    // insta's header (`---` … `---`), then the snapshot's text.
    let body = snapshot.splitn(3, "---\n").nth(2).expect("an insta snapshot");
    assert_eq!(block.trim_end(), body.trim_end(), "copy {name} (after its header) into the README");
}
