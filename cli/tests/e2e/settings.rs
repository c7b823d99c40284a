//! Every setting's default is stated once (its `#[arg]`; each role's `Default` is derived from it by
//! `core::config::clap_defaults`). This checks the documentation against it: every default the
//! README or docs/operations.md states as "`ENV_VAR` [value" equals the default `--help` prints.

use std::collections::BTreeMap;
use std::process::Command;

const COMMANDS: [&str; 9] = [
    "collector",
    "coordinator",
    "ingester",
    "api",
    "all",
    "demo",
    "import",
    "simulate",
    "bench",
];

/// `ENV_VAR -> default` from the help of every command, run with an empty environment so the help
/// shows defaults, not this machine's settings.
fn help_defaults() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for cmd in COMMANDS {
        let o = Command::new(env!("CARGO_BIN_EXE_dvmdash"))
            .args([cmd, "--help"])
            .env_clear()
            .output()
            .expect("run dvmdash --help");
        assert!(o.status.success(), "dvmdash {cmd} --help failed");
        let help = String::from_utf8_lossy(&o.stdout).replace('\n', " ");
        let mut rest = help.as_str();
        while let Some(i) = rest.find("[env: ") {
            rest = &rest[i + 6..];
            let name: String = rest.chars().take_while(|c| *c != '=' && *c != ']').collect();
            let next_env = rest.find("[env: ").unwrap_or(rest.len());
            if let Some(d) = rest[..next_env].find("[default: ") {
                let v = &rest[d + 10..];
                let v = &v[..v.find(']').unwrap_or(v.len())];
                out.insert(name, v.trim().to_owned());
            }
        }
    }
    out
}

/// `ENV_VAR -> value` wherever a document writes "`ENV_VAR` [value, ...]" or "`ENV_VAR` [`value`]".
fn documented(text: &str) -> Vec<(String, String)> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut rest = flat.as_str();
    while let Some(i) = rest.find("` [") {
        let before = &rest[..i];
        let name = before.rsplit('`').next().unwrap_or("");
        let after = &rest[i + 3..];
        let value = if let Some(quoted) = after.strip_prefix('`') {
            quoted.split('`').next().unwrap_or("")
        } else {
            // A comment follows ", "; a list is written with bare commas ([5666,5969]).
            let v = after.split(']').next().unwrap_or("");
            v.split(", ").next().unwrap_or("")
        };
        if name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            && !name.is_empty()
        {
            out.push((name.to_owned(), value.trim().to_owned()));
        }
        rest = after;
    }
    out
}

#[test]
fn documented_defaults_match_the_flags() {
    let help = help_defaults();
    assert!(
        help.len() > 20,
        "expected many settings with defaults, got {help:?}"
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    let mut wrong = Vec::new();
    for doc in ["README.md", "docs/operations.md"] {
        let text = std::fs::read_to_string(root.join(doc)).expect("read doc");
        for (name, value) in documented(&text) {
            let Some(actual) = help.get(&name) else {
                continue;
            };
            checked += 1;
            // clap prints a list's defaults separated by spaces.
            if actual.replace(',', " ") != value.replace(',', " ") {
                wrong.push(format!(
                    "{doc}: {name} documented as [{value}], --help says [{actual}]"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "documentation disagrees with the flags:\n{}",
        wrong.join("\n")
    );
    assert!(
        checked >= 15,
        "only {checked} documented defaults found; is the README format still `VAR` [value]?"
    );
}

#[test]
fn the_doc_parser_reads_both_forms() {
    let found = documented("`A_B` [3600], `C` [`x,y`, more], `D` [1,2] and `lower` [1] `E` [60, note]");
    let want = [("A_B", "3600"), ("C", "x,y"), ("D", "1,2"), ("E", "60")];
    assert_eq!(found, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
}
