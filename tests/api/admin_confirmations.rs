//! Every destructive action in the admin UI asks first: a walk over the
//! templates finds each POST form and fails on one that can revoke, rotate,
//! delete, disable, end sessions or take a role away without `data-confirm`
//! (read by `static/confirm.js`). A new form counts as destructive until it
//! is listed here as harmless, so forgetting to decide fails too.

use std::path::{Path, PathBuf};

/// Forms whose action only adds or saves what the person typed, or signs
/// them in or out of this one session: nothing to undo by surprise.
const HARMLESS_ACTIONS: &[&str] = &[
    "/admin/setup",
    "/admin/sign-in",
    "/admin/sign-in/totp",
    "/admin/sign-out",
    "/admin/api-keys#create-key",
    "/admin/api-keys/{{ key.id }}/limits",
    "/admin/service-users",
    "/admin/service-users/{{ user.id }}",
    "/admin/service-users/{{ user.id }}/enable",
    "/admin/webhooks",
    "/admin/webhooks/{{ line.endpoint.id }}/enable",
    "/admin/webhooks/{{ line.endpoint.id }}/test",
    "/admin/policy",
    "/admin/tenants",
    "/admin/tenants/admins",
    "/admin/account/password",
    "/admin/account/totp",
    // The OAuth consent page: answering is the page's one question (Deny
    // ends nothing that existed), a dialog on top would ask it twice.
    "/oauth/{{ tenant_slug }}/authorize",
    // Pre-registering a client creates.
    "/admin/oauth-clients",
];

/// In a form with several outcomes, the buttons that only undo a
/// restriction or say yes.
const HARMLESS_BUTTONS: &[&str] = &["Enable", "Accept", "Require"];

/// A POST form as written in a template: its action, whether the form asks,
/// and each submit button's label and whether it asks.
#[derive(Debug)]
struct PostForm {
    action: String,
    asks: bool,
    buttons: Vec<(String, bool)>,
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let (_, rest) = tag.split_once(&format!("{name}=\""))?;
    rest.split('"').next().map(str::to_owned)
}

fn post_forms(html: &str) -> Vec<PostForm> {
    let mut forms = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let from = &rest[start..];
        let tag = &from[..from.find('>').expect("a closed <form> tag")];
        let end = from.find("</form>").expect("a </form>");
        let body = &from[tag.len()..end];
        rest = &from[end..];
        if attribute(tag, "method").as_deref() != Some("post") {
            continue;
        }
        let buttons = body
            .split("<button")
            .skip(1)
            .filter_map(|b| {
                let (tag, after) = b.split_once('>')?;
                let submits = attribute(tag, "type").is_none_or(|t| t == "submit");
                let label = after.split("</button>").next()?.trim().to_owned();
                submits.then(|| (label, tag.contains("data-confirm=\"")))
            })
            .collect();
        forms.push(PostForm {
            action: attribute(tag, "action").unwrap_or_default(),
            asks: tag.contains("data-confirm=\""),
            buttons,
        });
    }
    forms
}

/// Why `form` fails the rule, if it does.
fn unconfirmed(form: &PostForm) -> Option<String> {
    if HARMLESS_ACTIONS.contains(&form.action.as_str()) || form.asks {
        return None;
    }
    if form.buttons.is_empty() {
        return Some(format!("{}: no submit button to check", form.action));
    }
    let silent: Vec<&str> = form
        .buttons
        .iter()
        .filter(|(label, asks)| !asks && !HARMLESS_BUTTONS.contains(&label.as_str()))
        .map(|(label, _)| label.as_str())
        .collect();
    (!silent.is_empty()).then(|| format!("{}: {silent:?} submit without asking", form.action))
}

fn templates(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("templates dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            templates(&path, found);
        } else if path.extension().is_some_and(|e| e == "html") {
            found.push(path);
        }
    }
}

#[test]
fn every_destructive_form_in_the_templates_asks_first() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut files = Vec::new();
    templates(&root, &mut files);
    let (mut checked, mut failures) = (0, Vec::new());
    for file in &files {
        let html = std::fs::read_to_string(file).expect("template");
        for form in post_forms(&html) {
            checked += 1;
            if let Some(why) = unconfirmed(&form) {
                failures.push(format!("{}: {why}", file.display()));
            }
        }
    }
    assert!(checked > 20, "the walk found the forms ({checked})");
    assert!(
        failures.is_empty(),
        "destructive forms without data-confirm:\n{}",
        failures.join("\n")
    );
    let base = std::fs::read_to_string(root.join("admin/base.html")).expect("base");
    assert!(
        base.contains("/static/confirm.js"),
        "every page loads the script that asks"
    );
}

#[test]
fn the_rule_catches_a_silent_form_and_a_silent_button() {
    let silent = r#"<form method="post" action="/admin/webhooks/x/delete"><button type="submit">Delete</button></form>"#;
    assert!(unconfirmed(&post_forms(silent)[0]).is_some());
    let asks = r#"<form method="post" action="/admin/webhooks/x/delete" data-confirm="Sure?"><button>Delete</button></form>"#;
    assert!(unconfirmed(&post_forms(asks)[0]).is_none());
    let mixed = r#"<form method="post" action="/admin/accounts/status"><button type="submit">Enable</button><button type="submit">Disable</button></form>"#;
    let why = unconfirmed(&post_forms(mixed)[0]).expect("refused");
    assert!(why.contains("Disable") && !why.contains("Enable"), "{why}");
    let get = r#"<form method="get" action="/admin/api-keys"><button>Filter</button></form>"#;
    assert!(post_forms(get).is_empty());
}
