//! The real `labshare` binary in a process of its own, configured like the in-process test
//! apps (the repository's templates, static files, workflows and index configuration).

use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_labshare");

/// A path inside the repository.
pub fn crate_path(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

/// A `labshare` command on `db_url` with its own data directory; logs at `warn`.
pub fn labshare(data_dir: &std::path::Path, db_url: &str) -> Command {
    let mut c = Command::new(BIN);
    c.env("LABSHARE_DATA_DIR", data_dir)
        .env("LABSHARE_DATABASE_URL", db_url)
        .env("LABSHARE_TEMPLATES_DIR", crate_path("templates"))
        .env("LABSHARE_STATIC_DIR", crate_path("static"))
        .env("LABSHARE_WORKFLOWS_DIR", crate_path("workflows"))
        .env("LABSHARE_INDEX_CONFIG_DIR", crate_path("index-config"))
        .env("LABSHARE_LOG", "warn")
        .env_remove("LABSHARE_NOW");
    c
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
