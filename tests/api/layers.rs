//! The dependency table (the book's Code layout page) is the code's: every module imports only
//! what its row allows, and no two modules of the server import each other.
//! Read from the sources (`crate::…` paths outside `#[cfg(test)]`), so a new
//! import that breaks the layering fails here, not in a later review.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Top-level module → the other top-level modules its code names.
fn imports() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = Graph::new();
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                fs::read_dir(&path)
                    .expect("src is readable")
                    .map(|e| e.expect("a directory entry").path()),
            );
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") {
            continue;
        }
        let relative = path.strip_prefix(&src).expect("under src");
        let top = relative
            .iter()
            .next()
            .and_then(|c| c.to_str())
            .expect("a file name");
        let top = top.trim_end_matches(".rs").to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a readable source file");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let named = graph.entry(top.clone()).or_default();
        named.extend(crate_paths(code).into_iter().filter(|m| *m != top));
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for named in graph.values_mut() {
        named.retain(|m| modules.contains(m));
    }
    graph
}

/// The first segment after every `crate::`, including each item of a
/// `crate::{a, b::c}` group.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        let (mut depth, mut item_start) = (0, 0);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.insert(ident(&group[item_start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.insert(ident(&group[item_start..i]));
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    }
    found.remove("");
    found
}

/// The book's table (`docs/src/design/layout.md`): module → what it may import. A row naming several
/// modules lets them import each other (the table says "only downwards";
/// the cycle check below holds them to it).
fn allowed() -> Graph {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/design/layout.md");
    let layout = fs::read_to_string(&page).expect("the book's layout page is readable");
    let table = layout
        .split("| module | may import |")
        .nth(1)
        .expect("the layout page has the dependency table");
    let mut rows = Graph::new();
    for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').collect();
        let names = |cell: &str| -> Vec<String> {
            let allowed_part = cell.split('(').next().unwrap_or_default();
            allowed_part
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect()
        };
        let modules = names(cells[1]);
        let mut may = names(cells[2]);
        if cells[2].contains("each other") {
            may.extend(modules.iter().cloned());
        }
        for module in modules {
            rows.entry(module).or_default().extend(may.iter().cloned());
        }
    }
    rows
}

#[test]
fn modules_import_only_what_the_readme_table_allows() {
    let graph = imports();
    let rows = allowed();
    assert!(
        rows.contains_key("domain") && rows.contains_key("routes"),
        "{rows:?}"
    );
    let mut broken = Vec::new();
    for (module, may) in &rows {
        let Some(named) = graph.get(module) else {
            continue;
        };
        for import in named.difference(may) {
            if import != module {
                broken.push(format!("{module} imports {import}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports the layout table (docs/src/design/layout.md) does not allow: {broken:?}"
    );
}

#[test]
fn no_two_modules_import_each_other() {
    let graph = imports();
    assert!(graph.len() > 10, "the scan found the modules: {graph:?}");
    let cycles: Vec<_> = graph
        .iter()
        .flat_map(|(a, named)| named.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a < b && graph.get(*b).is_some_and(|n| n.contains(*a)))
        .collect();
    assert!(
        cycles.is_empty(),
        "modules importing each other: {cycles:?}"
    );
}

#[test]
fn the_scan_sees_grouped_and_nested_imports() {
    let code = "use crate::{domain::{Actor, ids::KeyId}, error::AppError};\nlet x = crate::metrics::key_event;";
    let found = crate_paths(code);
    let expected: BTreeSet<String> = ["domain", "error", "metrics"].map(String::from).into();
    assert_eq!(found, expected);
}
