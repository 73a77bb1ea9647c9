//! Keeps docs/protocol.md honest: the methods it documents are the ones the
//! sidecar serves and have their schemas, every schema is documented, every
//! example validates against the schema its marker names, every link to a
//! section of the repository's docs points at a heading that exists, and no
//! tracked file points outside the repository.
//!
//! Conventions of the document (stated in it, under "Examples"):
//! - a method is a level-3 heading that is just the backticked name, under
//!   `## Requests` or `## Notifications` (`initialize` under
//!   `## Transport and lifecycle`);
//! - a schema is documented where it is linked, `[…](../schemas/FILE)`; a
//!   method's section links its params and result schemas;
//! - every ```json block is preceded by `<!-- schema: FILE [POINTER] -->`:
//!   the part of the block at the JSON Pointer (the whole block when absent)
//!   must match `schemas/FILE`.

mod common;

use mcp_auth_sidecar::rpc::protocol as p;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc() -> String {
    std::fs::read_to_string(root().join("docs/protocol.md")).expect("docs/protocol.md")
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Initialize,
    Request,
    Notification,
}

/// A method heading and the text of its section.
struct Method {
    name: String,
    kind: Kind,
    body: String,
}

/// Lines outside fenced code blocks, with their line numbers (1-based).
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    (level > 0 && line[level..].starts_with(' ')).then(|| (level, line[level..].trim()))
}

fn methods(text: &str) -> Vec<Method> {
    let lines: Vec<&str> = text.lines().collect();
    let prose = prose_lines(text);
    let mut section = String::new();
    let mut out: Vec<Method> = Vec::new();
    let mut open: Option<(Method, usize)> = None;
    for &(n, line) in &prose {
        let Some((level, title)) = heading(line) else {
            continue;
        };
        if level <= 3
            && let Some((mut m, start)) = open.take()
        {
            m.body = lines[start..n - 1].join("\n");
            out.push(m);
        }
        if level == 2 {
            section = title.to_owned();
        }
        let name = title
            .strip_prefix('`')
            .and_then(|t| t.strip_suffix('`'))
            .filter(|t| !t.contains('`') && !t.contains(' '));
        if level == 3
            && let Some(name) = name
        {
            let kind = match (section.as_str(), name) {
                ("Requests", _) => Kind::Request,
                ("Notifications", _) => Kind::Notification,
                ("Transport and lifecycle", "initialize") => Kind::Initialize,
                _ => continue,
            };
            open = Some((
                Method {
                    name: name.to_owned(),
                    kind,
                    body: String::new(),
                },
                n,
            ));
        }
    }
    if let Some((mut m, start)) = open {
        m.body = lines[start..].join("\n");
        out.push(m);
    }
    out
}

/// `mcp/handleChallenge` → `handle-challenge`.
fn kebab(method: &str) -> String {
    let name = method.strip_prefix("mcp/").unwrap_or(method);
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn schemas_of(m: &Method) -> Vec<String> {
    match m.kind {
        Kind::Initialize => vec![
            "initialization-options.json".into(),
            "initialize-result.json".into(),
        ],
        Kind::Request => vec![
            format!("{}.params.json", kebab(&m.name)),
            format!("{}.result.json", kebab(&m.name)),
        ],
        Kind::Notification => vec![format!("{}.params.json", kebab(&m.name))],
    }
}

fn schema_files() -> BTreeSet<String> {
    std::fs::read_dir(root().join("schemas"))
        .expect("schemas/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect()
}

/// Every schema the text links: `](../schemas/NAME.json)`.
fn mentioned_schemas(text: &str) -> BTreeSet<String> {
    let key = "](../schemas/";
    text.match_indices(key)
        .filter_map(|(i, _)| {
            let rest = &text[i + key.len()..];
            let name = &rest[..rest.find(')')?];
            name.ends_with(".json").then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn documented_methods_are_the_served_ones_and_have_their_schemas() {
    let text = doc();
    let methods = methods(&text);
    let files = schema_files();

    let documented = |kind: Kind| -> BTreeSet<String> {
        methods
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.name.clone())
            .collect()
    };
    let served: BTreeSet<String> = [
        p::AUTH_STATUS,
        p::AUTHORIZE,
        p::COMPLETE_AUTHORIZATION,
        p::ACCESS_TOKEN,
        p::HANDLE_CHALLENGE,
        p::LOGOUT,
    ]
    .map(str::to_owned)
    .into();
    let sent: BTreeSet<String> = [p::AUTH_STATUS_CHANGED, p::AUTHORIZATION_PENDING]
        .map(str::to_owned)
        .into();
    assert_eq!(documented(Kind::Request), served, "requests in the doc");
    assert_eq!(
        documented(Kind::Notification),
        sent,
        "notifications in the doc"
    );
    assert_eq!(
        documented(Kind::Initialize).len(),
        1,
        "`initialize` in the doc"
    );

    for m in &methods {
        for schema in schemas_of(m) {
            assert!(
                files.contains(&schema),
                "{} is documented but schemas/{schema} does not exist",
                m.name
            );
            assert!(
                mentioned_schemas(&m.body).contains(&schema),
                "the section of {} does not link schemas/{schema}",
                m.name
            );
        }
        // The test harness validates live traffic with the same files.
        let harness = match m.kind {
            Kind::Notification => common::schemas::notification_schema(&m.name),
            _ => common::schemas::result_schema(&m.name),
        };
        assert_eq!(
            harness.map(str::to_owned),
            schemas_of(m).last().cloned(),
            "tests/common/schemas.rs disagrees about {}",
            m.name
        );
    }
}

#[test]
fn every_schema_is_documented_and_every_documented_schema_exists() {
    let mentioned = mentioned_schemas(&doc());
    let files = schema_files();
    let undocumented: Vec<_> = files.difference(&mentioned).collect();
    assert!(
        undocumented.is_empty(),
        "schemas not referenced from docs/protocol.md: {undocumented:?}"
    );
    let missing: Vec<_> = mentioned.difference(&files).collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md references schemas that do not exist: {missing:?}"
    );
}

/// (line, schema, pointer, JSON text) of every marked example.
fn examples(text: &str) -> Vec<(usize, String, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("```") && line != "```" {
            let lang = line.trim_start_matches('`');
            let end = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("line {}: unclosed code block", i + 1));
            if lang == "json" {
                let marker = lines[..i]
                    .iter()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .and_then(|l| l.trim().strip_prefix("<!-- schema:"))
                    .and_then(|l| l.strip_suffix("-->"))
                    .unwrap_or_else(|| {
                        panic!(
                            "line {}: a ```json block without a `<!-- schema: FILE [POINTER] -->` marker",
                            i + 1
                        )
                    });
                let mut words = marker.split_whitespace();
                let schema = words.next().expect("schema file in marker").to_owned();
                let pointer = words.next().unwrap_or("").to_owned();
                out.push((i + 1, schema, pointer, lines[i + 1..end].join("\n")));
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn examples_validate_against_their_schemas() {
    let text = doc();
    let examples = examples(&text);
    let files = schema_files();
    let mut covered = BTreeSet::new();
    for (line, schema, pointer, json) in &examples {
        assert!(files.contains(schema), "line {line}: no schemas/{schema}");
        let value: Value = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("line {line}: the example is not JSON: {e}"));
        assert_eq!(
            value["jsonrpc"], "2.0",
            "line {line}: not a JSON-RPC message"
        );
        let part = value
            .pointer(pointer)
            .unwrap_or_else(|| panic!("line {line}: nothing at {pointer:?}"));
        common::schemas::assert_valid(schema, part);
        covered.insert(schema.clone());
    }
    // Every message has at least one real example.
    for m in methods(&text) {
        for schema in schemas_of(&m) {
            assert!(
                covered.contains(&schema),
                "no example of {schema} ({})",
                m.name
            );
        }
    }
    assert!(covered.contains("error.json"), "no example of an error");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    prose_lines(&text)
        .into_iter()
        .filter_map(|(_, l)| heading(l).map(|(_, t)| slug(t)))
        .collect()
}

fn tracked_files() -> Vec<String> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout)
        .expect("paths are UTF-8")
        .split('\0')
        .filter(|p| !p.is_empty())
        .filter(|p| !p.split('/').any(|c| c == "node_modules" || c == ".venv"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn links_into_the_docs_point_at_existing_sections() {
    let targets = [
        // Built so that this file does not match itself.
        (concat!("protocol.md", "#"), root().join("docs/protocol.md")),
        (
            concat!("ARCHITECTURE.md", "#"),
            root().join("ARCHITECTURE.md"),
        ),
        (
            concat!("DECISIONS.md", "#"),
            root().join("docs/DECISIONS.md"),
        ),
    ];
    let known: Vec<(&str, BTreeSet<String>)> =
        targets.iter().map(|(k, p)| (*k, anchors(p))).collect();
    let mut broken = Vec::new();
    let mut seen = 0;
    for file in tracked_files() {
        let Ok(text) = std::fs::read_to_string(root().join(&file)) else {
            continue;
        };
        for (key, anchors) in &known {
            for (i, _) in text.match_indices(key) {
                let anchor: String = text[i + key.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                seen += 1;
                if !anchors.contains(&anchor) {
                    broken.push(format!("{file}: {key}{anchor}"));
                }
            }
        }
    }
    assert!(seen > 0, "no links into the docs found");
    assert!(broken.is_empty(), "links to missing sections: {broken:#?}");
}

/// Whether `line` cites the team's contract that lives outside the
/// repository: a link into the `shared` folder beside it, the contract's
/// file name, or one of its numbered sections.
fn cites_outside(line: &str) -> bool {
    // Built so that this file does not match itself.
    let spec = concat!("S", "PEC");
    line.contains(concat!("../", "shared/"))
        || line.match_indices(spec).any(|(i, _)| {
            let before = line[..i].chars().next_back();
            let after = &line[i + spec.len()..];
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && (after.starts_with(" §")
                    || after.starts_with(".md")
                    || after
                        .strip_prefix(' ')
                        .is_some_and(|a| a.starts_with(|c: char| c.is_ascii_digit())))
        })
}

#[test]
fn no_tracked_file_points_outside_the_repository() {
    let mut found = Vec::new();
    for file in tracked_files() {
        let Ok(text) = std::fs::read_to_string(root().join(&file)) else {
            continue; // binary
        };
        for (n, line) in text.lines().enumerate() {
            if cites_outside(line) {
                found.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to documents outside the repository (use docs/protocol.md, \
         ARCHITECTURE.md or docs/DECISIONS.md): {found:#?}"
    );
}
