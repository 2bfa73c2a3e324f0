//! Browser tests: Debian's Chromium, headless, driven through chromedriver (fantoccini).
//! They need `chromium` and `chromium-driver`; `.ci/run` installs them and runs these with
//! `--ignored`. Run locally with `cargo test --test browser -- --ignored`.

#[path = "../common/mod.rs"]
mod common;

mod booking_plus;
mod consult;
mod designer;
mod journeys;
mod money;
mod reports;
mod self_service;
mod statistics;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder, Locator};

/// A chromedriver process and a headless Chromium session with a fresh profile.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        // Several rustls providers are linked in; pick one for the WebDriver client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver_bin =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_bin} ({e}); install chromium-driver"));
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                         "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display())]
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("rustls")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("chromedriver did not accept a session: {e}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    /// Save a screenshot under `docs/screenshots/` when `LABSHARE_SCREENSHOTS` is set.
    pub async fn screenshot(&self, name: &str) {
        if std::env::var("LABSHARE_SCREENSHOTS").is_err() {
            return;
        }
        if let Ok(png) = self.client.screenshot().await {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

// ---- helpers shared by the journeys -------------------------------------------------------

pub async fn click(b: &Browser, xpath: &str) {
    b.client
        .find(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("{xpath}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Click something that loads a new page (a submit button, a link) and wait until the old
/// page is gone, so what is found next belongs to the new one.
pub async fn submit(b: &Browser, xpath: &str) {
    let old = b.client.find(Locator::Css("html")).await.unwrap();
    click(b, xpath).await;
    gone(b, old, xpath).await;
}

/// The same for a button that asks for confirmation first: confirm, then wait.
pub async fn submit_confirmed(b: &Browser, xpath: &str) {
    let old = b.client.find(Locator::Css("html")).await.unwrap();
    click(b, xpath).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while b.client.accept_alert().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no confirmation for {xpath}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gone(b, old, xpath).await;
}

async fn gone(b: &Browser, old: fantoccini::elements::Element, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not load a new page"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = b
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("body"))
        .await;
}
