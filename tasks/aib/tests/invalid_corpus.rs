//! The bad-input corpus: each file in `tests/fixtures/invalid/` starts with
//! `// expect: LINE:COLUMN | PATH | FRAGMENT` (PATH `-` for problems with no parameter path,
//! such as syntax errors). `aib validate --parameters <file>` must exit 2 and report, at exactly
//! that `file:line:column`, that path and a message (or hint) containing the fragment.

use std::fs;

use crate::support::{aib, repo_root};

struct Expectation {
    file: String,
    line: usize,
    column: usize,
    path: Option<String>,
    fragment: String,
}

fn expectation(file: &str, bytes: &[u8]) -> Expectation {
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or_default();
    let spec = first
        .strip_prefix("// expect: ")
        .unwrap_or_else(|| panic!("{file}: first line must be `// expect: L:C | path | fragment`"));
    let parts: Vec<&str> = spec.splitn(3, " | ").collect();
    assert_eq!(parts.len(), 3, "{file}: expect line has three parts");
    let (line, column) = parts[0]
        .split_once(':')
        .unwrap_or_else(|| panic!("{file}: position is LINE:COLUMN"));
    Expectation {
        file: file.to_string(),
        line: line.parse().expect("line is a number"),
        column: column.parse().expect("column is a number"),
        path: (parts[1] != "-").then(|| parts[1].to_string()),
        fragment: parts[2].trim().to_string(),
    }
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("tests/fixtures/invalid");
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .expect("the corpus directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = format!(
                "tests/fixtures/invalid/{}",
                p.file_name().unwrap().to_string_lossy()
            );
            (name, fs::read(&p).expect("readable fixture"))
        })
        .collect();
    files.sort();
    files
}

/// The corpus is large enough to cover every case the issue lists (at least 30 files).
#[test]
fn invalid_corpus_has_at_least_thirty_files() {
    assert!(corpus().len() >= 30, "only {} fixtures", corpus().len());
}

/// Every invalid fixture exits 2 and names its file:line:column, parameter path and message.
#[test]
fn every_invalid_fixture_exits_2_at_its_position_with_its_path_and_message() {
    let mut failures = Vec::new();
    for (file, bytes) in corpus() {
        let want = expectation(&file, &bytes);
        let run = aib(&["validate", "--parameters", &file]);
        let output = run.all();
        let mut place = format!("{}:{}:{}: ", want.file, want.line, want.column);
        if let Some(path) = &want.path {
            place.push_str(path);
            place.push_str(": ");
        }
        let lines: Vec<&str> = output.lines().collect();
        // The problem line, plus the hint line after it when there is one.
        let found = lines.iter().enumerate().any(|(i, line)| {
            let Some(at) = line.find(&place) else {
                return false;
            };
            let mut text = line[at..].to_lowercase();
            if let Some(next) = lines.get(i + 1).filter(|n| n.contains("hint: ")) {
                text.push_str(&next.to_lowercase());
            }
            text.contains(&want.fragment.to_lowercase())
        });
        if run.code != Some(2) || !found {
            failures.push(format!(
                "{file}: exit {:?}, wanted `{place}` with \"{}\" in:\n{output}",
                run.code, want.fragment
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
