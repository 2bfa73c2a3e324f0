//! The command line as an operator uses it: the real `labshare` binary in its own process,
//! next to a running `labshare serve` on the same database.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::common::{
    fresh_database_url,
    process::{self, crate_path, free_port},
};

/// A `labshare` command with the test's configuration and workflows from `workflows`.
fn labshare(data_dir: &std::path::Path, db_url: &str, workflows: &str) -> Command {
    let mut c = process::labshare(data_dir, db_url);
    c.env("LABSHARE_WORKFLOWS_DIR", workflows)
        .env("LABSHARE_LOG", "info,sqlx=warn");
    c
}

fn users_add(data_dir: &std::path::Path, db_url: &str, name: &str) -> std::process::Output {
    labshare(data_dir, db_url, &crate_path("workflows"))
        .args(["users", "add", name, "--password", "Cli-Passw0rd", "--role"])
        .arg("platform_admin")
        .output()
        .expect("run labshare users add")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn users_add_succeeds_while_serve_loads_and_runs_on_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let port = free_port();
    let mut child = labshare(dir.path(), &db_url, &crate_path("workflows"))
        .args(["serve", "--demo"])
        .env("LABSHARE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start labshare serve");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    // Wait until the server has migrated and is loading the demo data: the moment operators
    // saw "database is locked".
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("loading the demo data set") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("serve reached the demo load");
    // While it writes the demo data set …
    for i in 0..3 {
        let out = users_add(dir.path(), &db_url, &format!("cli_admin_{i}"));
        assert!(
            out.status.success(),
            "users add #{i} failed while serve was loading: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("已创建用户"));
    }
    // … and once it serves.
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = client.get(format!("{base}/healthz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = users_add(dir.path(), &db_url, "cli_admin_late");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The accounts made beside the running server sign in through it.
    for name in ["cli_admin_0", "cli_admin_2", "cli_admin_late"] {
        let res = client
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"username": name, "password": "Cli-Passw0rd"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name} cannot sign in");
    }
    // A duplicate is refused with a message, not a crash.
    let out = users_add(dir.path(), &db_url, "cli_admin_late");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("错误"));
    drop(server);
}

/// Wait until `base` answers `/healthz`.
async fn wait_healthy(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ready = client.get(format!("{base}/healthz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "serve did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn plain_serve_on_an_empty_database_creates_no_account_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let port = free_port();
    let mut child = labshare(dir.path(), &db_url, &crate_path("workflows"))
        .arg("serve")
        .env("LABSHARE_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start labshare serve");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("labshare users add") && line.contains("system_admin") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("serve logs how to create the first system admin");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_healthy(&client, &base).await;
    let res = client
        .post(format!("{base}/api/v1/session"))
        .json(&json!({"username": "admin", "password": "Demo2026pass"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the demo admin exists without --demo");
    drop(server);
}

#[tokio::test]
async fn commands_that_do_not_serve_need_no_valid_workflows() {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, _guard) = fresh_database_url(dir.path()).await;
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(flows.join("broken.yaml"), "key: [unclosed\n").unwrap();
    let flows = flows.display().to_string();
    let run = |args: &[&str]| {
        labshare(dir.path(), &db_url, &flows)
            .args(args)
            .output()
            .expect("run labshare")
    };
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "migrate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&[
        "users",
        "add",
        "first_admin",
        "--password",
        "Cli-Passw0rd",
        "--role",
        "system_admin",
    ]);
    assert!(
        out.status.success(),
        "users add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Serving does need them, and says which file is wrong.
    let out = run(&["jobs", "run", "index-check"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.yaml"));
    // The index was never opened by the commands that do not need it.
    assert!(!dir.path().join("index").exists());
}
