//! The platform clock (平台时钟). Normally the system clock; with `LABSHARE_NOW` it starts
//! from the given instant and runs on, so tests can restart the server "a month later".

use std::time::Instant;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;

#[derive(Clone, Debug)]
pub struct Clock {
    start: Option<(DateTime<Utc>, Instant)>,
}

impl Clock {
    pub fn system() -> Self {
        Clock { start: None }
    }

    pub fn starting_at(at: DateTime<FixedOffset>) -> Self {
        Clock {
            start: Some((at.with_timezone(&Utc), Instant::now())),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self.start {
            None => Utc::now(),
            Some((at, started)) => {
                at + chrono::Duration::from_std(started.elapsed()).unwrap_or_default()
            }
        }
    }

    /// Unix seconds, the form timestamps take in the database.
    pub fn now_ts(&self) -> i64 {
        self.now().timestamp()
    }

    /// Today's date in the platform's zone (Asia/Shanghai).
    pub fn today(&self) -> NaiveDate {
        self.now().with_timezone(&Shanghai).date_naive()
    }
}

/// Render a stored unix timestamp as RFC 3339 in Asia/Shanghai.
pub fn rfc3339(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai)
        .to_rfc3339()
}

/// Render a stored unix timestamp for people: `2026-11-26 21:03`.
pub fn display(ts: i64) -> String {
    DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&Shanghai)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_clock_begins_at_its_instant_and_runs_on() {
        let at = DateTime::parse_from_rfc3339("2027-01-01T00:05:00+08:00").unwrap();
        let clock = Clock::starting_at(at);
        let now = clock.now();
        assert!(now >= at.with_timezone(&Utc));
        assert!(now - at.with_timezone(&Utc) < chrono::Duration::seconds(5));
        assert_eq!(clock.today().to_string(), "2027-01-01");
    }

    #[test]
    fn timestamps_are_shown_in_shanghai_time() {
        assert_eq!(rfc3339(0), "1970-01-01T08:00:00+08:00");
        assert_eq!(display(0), "1970-01-01 08:00");
    }
}
