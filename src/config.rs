//! Runtime configuration (运行配置): read once from `LABSHARE_*` environment variables (a
//! systemd `EnvironmentFile=` or the shell supplies them); secrets never reach `Debug`.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

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
    /// Upward reporting (信息上报): the provincial/national docking endpoint approved batches
    /// are pushed to (`LABSHARE_UPSTREAM_URL`); unset, batches are exported by hand.
    pub upstream: Option<Upstream>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`LABSHARE_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<IpNet>,
    /// Docking calls one API client may make per minute, across all nodes
    /// (`LABSHARE_DOCKING_RATE_LIMIT`, default 60; 0: unlimited).
    pub docking_rate_limit: u32,
    /// The province the platform reports in, written as `province` on national records
    /// (`LABSHARE_REPORT_PROVINCE`, default 河南省).
    pub report_province: String,
}

/// Where and how approved report batches are pushed.
#[derive(Clone)]
pub struct Upstream {
    pub url: String,
    /// `LABSHARE_UPSTREAM_TOKEN`, sent as `Authorization: Bearer …`.
    pub token: String,
    /// First retry delay (`LABSHARE_UPSTREAM_BACKOFF_MS`, default 30 s), doubled per attempt.
    pub backoff_ms: u64,
    /// How often the pusher looks for due batches (`LABSHARE_UPSTREAM_POLL_MS`, default 5 s).
    pub poll_ms: u64,
}

/// An address block (`10.0.0.0/8`, `::1/128`; a bare address is a block of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(raw: &str) -> Option<IpNet> {
        let raw = raw.trim();
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (raw.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, width), (other, other_width)) = (bits(self.addr), bits(ip));
        if width != other_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        net & mask == other & mask
    }
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
            .field(
                "upstream_url",
                &self.upstream.as_ref().map(|u| redact_url(&u.url)),
            )
            .field("trusted_proxies", &self.trusted_proxies)
            .field("docking_rate_limit", &self.docking_rate_limit)
            .field("report_province", &self.report_province)
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
        let millis = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(var) {
                Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                    var,
                    message: format!("{v:?} is not a number of milliseconds"),
                }),
                None => Ok(default),
            }
        };
        let upstream = match get("LABSHARE_UPSTREAM_URL") {
            Some(u) => Some(Upstream {
                url: u.trim().trim_end_matches('/').to_string(),
                token: get("LABSHARE_UPSTREAM_TOKEN").unwrap_or_default(),
                backoff_ms: millis("LABSHARE_UPSTREAM_BACKOFF_MS", 30_000)?.max(1),
                poll_ms: millis("LABSHARE_UPSTREAM_POLL_MS", 5_000)?.max(10),
            }),
            None => None,
        };
        let mut trusted_proxies = Vec::new();
        for part in get("LABSHARE_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            trusted_proxies.push(IpNet::parse(part).ok_or_else(|| ConfigError::Invalid {
                var: "LABSHARE_TRUSTED_PROXIES",
                message: format!("{part:?} is not an IP address or CIDR block"),
            })?);
        }
        let docking_rate_limit = match get("LABSHARE_DOCKING_RATE_LIMIT") {
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                var: "LABSHARE_DOCKING_RATE_LIMIT",
                message: format!("{v:?} is not a number of calls per minute"),
            })?,
            None => 60,
        };
        let report_province = get("LABSHARE_REPORT_PROVINCE")
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "河南省".into());
        Ok(Config {
            docking_rate_limit,
            report_province,
            upstream,
            trusted_proxies,
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
    fn trusted_proxies_are_addresses_or_blocks_and_none_by_default() {
        assert!(cfg(&[]).unwrap().trusted_proxies.is_empty());
        let c = cfg(&[("LABSHARE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")]).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(c.trusted_proxies[0].contains(ip("10.200.3.4")));
        assert!(!c.trusted_proxies[0].contains(ip("11.0.0.1")));
        assert!(c.trusted_proxies[1].contains(ip("127.0.0.1")));
        assert!(c.trusted_proxies[1].contains(ip("::ffff:127.0.0.1")));
        assert!(!c.trusted_proxies[1].contains(ip("127.0.0.2")));
        assert!(c.trusted_proxies[2].contains(ip("::1")));
        assert!(IpNet::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        let err = cfg(&[("LABSHARE_TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err();
        assert!(err.to_string().starts_with("LABSHARE_TRUSTED_PROXIES"));
        assert!(cfg(&[("LABSHARE_TRUSTED_PROXIES", "proxy.local")]).is_err());
    }

    #[test]
    fn a_malformed_clock_start_is_rejected_with_the_variable_name() {
        let err = cfg(&[("LABSHARE_NOW", "yesterday")]).unwrap_err();
        assert!(err.to_string().starts_with("LABSHARE_NOW"));
    }
}
