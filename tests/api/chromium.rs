//! Real headless Chromium driven over WebDriver: one chromedriver process per
//! test, killed with its whole process group when the test ends, pass or fail.

use std::{
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    panic::AssertUnwindSafe,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, wd::TimeoutConfiguration};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver on a port it chose itself (no race for a free port).
struct Chromedriver {
    child: Child,
    port: u16,
    _home: tempfile::TempDir,
}

impl Chromedriver {
    fn start() -> Self {
        let home = tempfile::tempdir().expect("home dir");
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .env("HOME", home.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "{CHROMEDRIVER} did not start ({err}); scripts/test installs chromium-driver"
                )
            });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                let (_, rest) = line.split_once("started successfully on port ")?;
                rest.trim_end_matches('.').parse().ok()
            })
            .expect("chromedriver announces its port");
        // Keep draining so chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self {
            child,
            port,
            _home: home,
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The group holds chromedriver and every Chromium process it started.
        crate::child::kill_group(&mut self.child);
    }
}

/// A browser session plus the helpers the UI tests speak in.
pub struct Browser {
    pub client: Client,
    screenshots: PathBuf,
    _profile: tempfile::TempDir,
    _driver: Chromedriver,
}

/// The window a session opens with, and the theme the system prefers.
#[derive(Debug, Clone, Copy)]
pub struct Screen {
    pub width: u32,
    pub height: u32,
    pub dark: bool,
    /// Confirmation dialogs: accepted by the driver on the next command
    /// (`false`, what most tests want), or left open for the test to answer.
    pub answer_dialogs_myself: bool,
}

impl Screen {
    pub const DESKTOP: Self = Self {
        width: 1280,
        height: 900,
        dark: false,
        answer_dialogs_myself: false,
    };
    /// An iPhone 12–15's width in CSS pixels.
    pub const PHONE: Self = Self {
        width: 390,
        height: 844,
        dark: false,
        answer_dialogs_myself: false,
    };

    /// A phone and a desktop, each light and dark, with what names them in
    /// a screenshot's label (`phone-dark`).
    pub fn each_look() -> Vec<(String, Self)> {
        let mut looks = Vec::new();
        for (name, base) in [("phone", Self::PHONE), ("desktop", Self::DESKTOP)] {
            for dark in [false, true] {
                let theme = if dark { "dark" } else { "light" };
                looks.push((format!("{name}-{theme}"), Self { dark, ..base }));
            }
        }
        looks
    }
}

impl Browser {
    /// Screenshots go to `tests/artifacts/<label>-<name>.png`.
    pub async fn start(label: &str) -> Self {
        Self::start_with(label, Screen::DESKTOP).await
    }

    pub async fn start_with(label: &str, screen: Screen) -> Self {
        let driver = Chromedriver::start();
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "unhandledPromptBehavior".into(),
            json!(if screen.answer_dialogs_myself {
                "ignore"
            } else {
                "accept"
            }),
        );
        let mut args = vec![
            json!("--headless"),
            json!("--no-sandbox"),
            json!("--disable-gpu"),
            json!("--disable-dev-shm-usage"),
            json!("--no-first-run"),
            json!("--disable-background-networking"),
            json!("--disable-component-update"),
            json!("--disable-sync"),
            json!(format!("--window-size={},{}", screen.width, screen.height)),
            json!(format!("--user-data-dir={}", profile.path().display())),
        ];
        if screen.dark {
            // Makes `prefers-color-scheme: dark` match, as a dark system does.
            args.push(json!("--force-dark-mode"));
        }
        caps.insert(
            "goog:chromeOptions".into(),
            // A real window has a minimum width (about 500 px in headless
            // Chromium): a phone's viewport needs the driver's device emulation.
            if screen.width < 500 {
                json!({
                    "binary": CHROMIUM,
                    "args": args,
                    "mobileEmulation": {"deviceMetrics": {"width": screen.width, "height": screen.height, "pixelRatio": 3.0}},
                })
            } else {
                json!({ "binary": CHROMIUM, "args": args })
            },
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a Chromium session");
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(20)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("timeouts");
        let screenshots = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/artifacts")
            .join(label);
        std::fs::create_dir_all(&screenshots).expect("artifacts dir");
        Self {
            client,
            screenshots,
            _profile: profile,
            _driver: driver,
        }
    }

    /// Runs `scenario`, then always ends the session (a panic included), so
    /// no Chromium outlives the test; a hang becomes a failure after `limit`.
    pub async fn run(&self, limit: Duration, scenario: impl Future<Output = ()>) {
        let outcome = AssertUnwindSafe(tokio::time::timeout(limit, scenario))
            .catch_unwind()
            .await;
        if !matches!(outcome, Ok(Ok(()))) {
            // What the browser showed when it went wrong, for whoever reads the failure.
            if let Ok(png) = self.client.screenshot().await {
                let _ = std::fs::write(self.screenshots.join("failure.png"), png);
            }
        }
        let _ = self.client.clone().close().await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the browser scenario did not finish within {limit:?}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|err| panic!("open {url}: {err}"));
    }

    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(err) => panic!("no `{css}` on {}: {err}", self.path().await),
        }
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .len()
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click `{css}`: {err}"));
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    pub async fn source(&self) -> String {
        self.client.source().await.expect("page source")
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|url| url.path().to_owned())
            .unwrap_or_else(|err| format!("<unknown: {err}>"))
    }

    /// Waits until the page's text contains `needle` (navigation may still be settling).
    pub async fn wait_for_text(&self, needle: &str) {
        let client = self.client.clone();
        let found = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::XPath(&format!(
                "//*[contains(normalize-space(.), {})]",
                xpath_literal(needle)
            )))
            .await;
        assert!(
            found.is_ok(),
            "`{needle}` never appeared on {}",
            self.path().await
        );
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::write(self.screenshots.join(format!("{name}.png")), png).expect("save screenshot");
    }
}

/// An XPath string literal for text that has no double quote.
fn xpath_literal(text: &str) -> String {
    assert!(
        !text.contains('"'),
        "keep test needles free of double quotes"
    );
    format!("\"{text}\"")
}
