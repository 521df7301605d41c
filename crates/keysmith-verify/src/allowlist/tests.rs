//! The allowlists, least privilege, and the URI rules, by case and on
//! generated URIs.

use proptest::prelude::*;

use super::*;

fn tools(patterns: &[&str]) -> ToolAllowlist {
    Allowlist::from_list(patterns).expect("valid")
}

fn resources(patterns: &[&str]) -> ResourceAllowlist {
    Allowlist::from_list(patterns).expect("valid")
}

fn uri(pattern: &str) -> UriPattern {
    UriPattern::parse(pattern).expect("valid")
}

#[test]
fn lists_are_bounded_and_explain_themselves() {
    assert!(tools(&["a", "b*"]).allows("bc"));
    assert_eq!(
        ToolAllowlist::from_list::<&str>(&[]),
        Err(InvalidAllowlist::Empty)
    );
    assert_eq!(
        ToolAllowlist::from_list(&vec!["a"; 101]),
        Err(InvalidAllowlist::TooLong)
    );
    let bad_tool = ToolAllowlist::from_list(&["a", "b c"]).expect_err("refused");
    assert!(
        bad_tool.to_string().starts_with("names are 1 to 128"),
        "{bad_tool}"
    );
    let bad_uri = ResourceAllowlist::from_list(&["file:///a/../*"]).expect_err("refused");
    assert!(
        bad_uri.to_string().starts_with("a resource pattern is"),
        "{bad_uri}"
    );
    assert!(!Allowlist::<ToolPattern>::nothing().allows("a"));
    assert!(Allowlist::<ToolPattern>::any().allows("a"));
}

#[test]
fn storage_round_trip_and_corruption_fails_closed() {
    let allow = resources(&["test://a", "file:///public/*"]);
    let stored = allow.to_storage();
    assert_eq!(ResourceAllowlist::from_storage(stored.as_deref()), allow);
    assert_eq!(ResourceAllowlist::any().to_storage(), None);
    assert!(!ToolAllowlist::from_storage(Some("not json")).allows("a"));
    // A stored pattern the rule no longer admits fails closed too.
    assert!(!ResourceAllowlist::from_storage(Some(r#"["a b"]"#)).allows("a b"));
}

#[test]
fn least_privilege_between_the_kinds() {
    let all = Capabilities::everything();
    assert!(!all.is_limited());
    assert!(
        all.tools().allows("x") && all.resources().allows("test://x") && all.prompts().allows("p")
    );

    // Naming tools only (what every limited key was before): no resource, no prompt.
    let tools_only = Capabilities::tools_only(vec![ToolPattern::parse("echo").expect("valid")]);
    assert!(tools_only.is_limited());
    assert!(tools_only.tools().allows("echo"));
    assert!(!tools_only.resources().allows("test://static-text"));
    assert!(!tools_only.prompts().allows("p"));

    // Naming resources only: no tool either.
    let resources_only =
        Capabilities::new(Allowlist::any(), resources(&["test://*"]), Allowlist::any());
    assert!(!resources_only.tools().allows("echo"));
    assert!(resources_only.resources().allows("test://x"));

    // `["*"]` is "every one of this kind", and still names a list.
    let star = Capabilities::new(tools(&["*"]), Allowlist::any(), Allowlist::any());
    assert!(star.tools().allows("anything"));
    assert!(!star.prompts().allows("p"));

    // Rows written before the rule: tools named, the other columns NULL.
    let old_row = Capabilities::from_storage(Some(r#"["echo"]"#), None, None);
    assert_eq!(old_row, tools_only);
    assert_eq!(
        old_row.to_storage(),
        [
            Some(r#"["echo"]"#.into()),
            Some("[]".into()),
            Some("[]".into())
        ]
    );
    assert_eq!(Capabilities::from_storage(None, None, None), all);
}

#[test]
fn remote_lists_drop_what_they_cannot_read() {
    let list = ResourceAllowlist::from_remote(Some(vec!["test://a".into(), "bad uri".into()]));
    assert!(list.allows("test://a"));
    assert!(!list.allows("bad uri"));
    assert!(ResourceAllowlist::from_remote(None).allows("x"));
}

#[test]
fn a_prefix_admits_plain_uris_under_it() {
    let public = uri("file:///public/*");
    for admitted in [
        "file:///public/a.txt",
        "file:///public/docs/readme.md",
        "file:///public/a%20b.txt",
        "file:///public/.hidden",
        "file:///public/v1.2/x",
    ] {
        assert!(public.matches(admitted), "{admitted}");
    }
    assert!(uri("test:*").matches("test://static-text"));
    assert!(uri("test://template/*").matches("test://template/42/data"));
}

#[test]
fn a_prefix_refuses_what_an_upstream_could_read_elsewhere() {
    let public = uri("file:///public/*");
    for refused in [
        "file:///public/../secret",
        "file:///public/..",
        "file:///public/.",
        "file:///public/a/../../secret",
        "file:///public/./a",
        "file:///public/%2e%2e/secret",
        "file:///public/%2E%2E/secret",
        "file:///public/.%2e/secret",
        "file:///public/..%2fsecret",
        "file:///public/..%5csecret",
        "file:///public/..\\secret",
        "file:///public\\..\\secret",
        "file:///public/%252e%252e/secret",
        "file:///public/%c0%ae%c0%ae/secret",
        "file:///public/%u002e%u002e/secret",
        "file:///public/%2",
        "file:///public/%+2e",
        "file:///public//etc/passwd",
        "file:///public/a//b",
        "file:///public/C:/Windows",
        "file:///public/C%3a/Windows",
        "file:///public/..;/secret",
        "file:///public/x?../../secret",
        "file:///public/x#../secret",
        "file:///public/\u{ff0e}\u{ff0e}/secret",
        "file:///public/a b",
        "file:///public/a\nb",
        "file:///public/a\0",
        "file:///public/*",
        "file:///publicity/x",
        "file:///PUBLIC/x",
        "FILE:///public/x",
        "file:///secret",
    ] {
        assert!(!public.matches(refused), "{refused:?}");
    }
    let long = format!("file:///public/{}", "a".repeat(MAX_URI_LEN));
    assert!(!public.matches(&long));
}

#[test]
fn exact_patterns_admit_only_their_own_bytes() {
    let exact = uri("test://static-text");
    assert!(exact.matches("test://static-text"));
    assert!(!exact.matches("test://static-text/"));
    assert!(!exact.matches("test://static-tex"));
    assert!(!exact.matches("TEST://static-text"));
    assert!(uri("db://table?id=1").matches("db://table?id=1"));
    assert!(uri("*").matches("anything:at/all"));
}

#[test]
fn patterns_that_could_not_mean_one_thing_are_refused() {
    for bad in [
        "",
        "**",
        "file:///a*b",
        "file:///a*b*",
        "a b",
        "test://x\n",
        "file:///public/../*",
        "file:///public/./*",
        "file:///public//*",
        "file:///public/%2e*",
        "file:///public/%2*",
        "file:///public?*",
        "file:///public#*",
        "file:///public\\*",
        "file:///pub lic/*",
        "file:///é/*",
        &format!("{}*", "a".repeat(MAX_URI_LEN)),
        &"a".repeat(MAX_URI_LEN + 1),
    ] {
        assert_eq!(UriPattern::parse(bad), Err(InvalidUriPattern), "{bad:?}");
    }
    for good in [
        "*",
        "test://*",
        "file:///public/*",
        "http://[::1]:8080/docs/*",
        "urn:isbn:*",
        "db://table?id=1",
        "file:///é",
    ] {
        assert!(UriPattern::parse(good).is_ok(), "{good:?}");
    }
}

#[test]
fn templates_are_listed_only_when_every_expansion_is_admitted() {
    let template = uri("test://template/*");
    assert!(template.covers_template("test://template/{id}/data"));
    assert!(template.covers_template("test://template/{+path}"));
    assert!(template.covers_template("test://template/fixed"));
    // The expression could write the prefix's last characters, or more.
    assert!(!template.covers_template("test://{kind}/x"));
    assert!(!uri("test://template/1*").covers_template("test://template/{id}"));
    // Literal text no expansion can make plain.
    assert!(!template.covers_template("test://template/{id}/../secret"));
    assert!(!template.covers_template("test://template/{id}?q"));
    assert!(!template.covers_template("test://template/{id"));
    assert!(!template.covers_template("test://template/id}"));
    assert!(!template.covers_template("test://template/{a{b}}"));
    // An exact pattern covers a template without expressions, equal to it.
    assert!(uri("test://a").covers_template("test://a"));
    assert!(!uri("test://a").covers_template("test://a{x}"));
    assert!(uri("*").covers_template("anything/{x}"));
}

/// Text built from the pieces path tricks are made of.
fn tricky_uri() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a", "b.txt", "/", ".", "..", "%2e", "%2E", "%2f", "%5c", "%25", "%20", "%41", "%", "\\",
        ";", "?", "#", ":", "@", "~", "-", "*", "é", "\u{ff0e}", "\0", " ", "%c0%ae", "//",
    ]);
    prop::collection::vec(piece, 0..12)
        .prop_map(|pieces| format!("file:///public/{}", pieces.concat()))
}

/// What an upstream might make of a URI: percent-decoded (once or twice),
/// backslashes as separators, NFKC-like full stops, then dot segments
/// resolved. `None` when it would not decode.
fn normalised_paths(uri: &str) -> Vec<String> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    fn resolve(path: &str) -> String {
        let mut segments: Vec<&str> = Vec::new();
        for segment in path.split(['/', '\\']) {
            match segment {
                "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        segments.join("/")
    }
    let once = decode(uri);
    let twice = decode(&once);
    [uri.to_owned(), once, twice]
        .iter()
        .map(|u| u.replace('\u{ff0e}', "."))
        .map(|u| u.split(['?', '#']).next().unwrap_or_default().to_owned())
        .map(|u| resolve(u.strip_prefix("file://").unwrap_or(&u)))
        .collect()
}

proptest! {
    /// Whatever an upstream might make of an admitted URI, it stays under
    /// `/public/` and starts no new absolute path.
    #[test]
    fn an_admitted_uri_stays_under_its_prefix_however_it_is_decoded(candidate in tricky_uri()) {
        if uri("file:///public/*").matches(&candidate) {
            for path in normalised_paths(&candidate) {
                prop_assert!(path.starts_with("/public/"), "{candidate:?} → {path:?}");
                let rest = &path["/public/".len()..];
                prop_assert!(!rest.contains("//") && !rest.starts_with('/'), "{candidate:?} → {path:?}");
                prop_assert!(!rest.contains(':') && !rest.contains('\\'), "{candidate:?} → {path:?}");
            }
        }
    }

    /// A prefix of plain segments is accepted as written and admits a
    /// plain name under it, and nothing beside it.
    #[test]
    fn plain_prefixes_admit_plain_names(prefix in "[a-z]{1,5}://[a-z0-9]{1,8}(/[a-z0-9_-]{1,8}){0,3}/", name in "[A-Za-z0-9_-]{1,10}") {
        let raw = format!("{prefix}*");
        let pattern = UriPattern::parse(&raw).expect("a plain prefix");
        prop_assert_eq!(pattern.as_str(), raw.as_str());
        let under = format!("{prefix}{name}");
        prop_assert!(pattern.matches(&under), "{}", under);
        let beside = format!("{}{name}", &prefix[..prefix.len() - 1]);
        prop_assert!(!pattern.matches(&beside), "{}", beside);
    }
}
