//! Runtime configuration (运行配置): read once from `LABSHARE_*` environment variables (a
//! systemd `EnvironmentFile=` or the shell supplies them); secrets never reach `Debug`.

use std::{fmt, net::SocketAddr, path::PathBuf};

use chrono::{DateTime, FixedOffset};

/// Everything the platform needs to start.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: String,
    pub smtp_url: Option<String>,
    pub workflows_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub static_dir: PathBuf,
    /// Start instant of the platform clock (tests and demos only).
    pub now: Option<DateTime<FixedOffset>>,
    /// Mark cookies `Secure` (set when `public_url` is https).
    pub secure_cookies: bool,
}

/// Hide credentials that may sit inside connection URLs.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable url>".to_string(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("workflows_dir", &self.workflows_dir)
            .field("now", &self.now)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}: {message}")]
    Invalid { var: &'static str, message: String },
}

impl Config {
    /// Read the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read the configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(get("LABSHARE_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let database_url = get("LABSHARE_DATABASE_URL")
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("labshare.db").display()));
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::Invalid {
                var: "LABSHARE_DATABASE_URL",
                message: "must start with sqlite: or postgres://".into(),
            });
        }
        let bind_raw = get("LABSHARE_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind_raw.parse().map_err(|e| ConfigError::Invalid {
            var: "LABSHARE_BIND",
            message: format!("{bind_raw:?} is not host:port ({e})"),
        })?;
        let now = match get("LABSHARE_NOW") {
            Some(raw) => Some(DateTime::parse_from_rfc3339(raw.trim()).map_err(|e| {
                ConfigError::Invalid {
                    var: "LABSHARE_NOW",
                    message: format!("{raw:?} is not an RFC 3339 instant ({e})"),
                }
            })?),
            None => None,
        };
        let public_url = get("LABSHARE_PUBLIC_URL")
            .unwrap_or_else(|| format!("http://{bind}"))
            .trim_end_matches('/')
            .to_string();
        Ok(Config {
            database_url,
            bind,
            secure_cookies: public_url.starts_with("https://"),
            public_url,
            smtp_url: get("LABSHARE_SMTP_URL"),
            workflows_dir: PathBuf::from(
                get("LABSHARE_WORKFLOWS_DIR").unwrap_or_else(|| "./workflows".into()),
            ),
            templates_dir: PathBuf::from(
                get("LABSHARE_TEMPLATES_DIR").unwrap_or_else(|| "./templates".into()),
            ),
            static_dir: PathBuf::from(
                get("LABSHARE_STATIC_DIR").unwrap_or_else(|| "./static".into()),
            ),
            now,
            data_dir,
        })
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_use_sqlite_under_the_data_directory() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url, "sqlite://./data/labshare.db");
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert!(!c.is_postgres());
    }

    #[test]
    fn debug_output_never_shows_the_database_password() {
        let c = cfg(&[("LABSHARE_DATABASE_URL", "postgres://app:s3cret@db/labshare")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(c.is_postgres());
    }

    #[test]
    fn a_malformed_clock_start_is_rejected_with_the_variable_name() {
        let err = cfg(&[("LABSHARE_NOW", "yesterday")]).unwrap_err();
        assert!(err.to_string().starts_with("LABSHARE_NOW"));
    }
}
