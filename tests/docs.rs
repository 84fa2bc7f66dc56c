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
