//! Money (金额): yuan with two decimals, rounded half-up (四舍五入); stored as integer fen.

use std::{fmt, str::FromStr};

use rust_decimal::{Decimal, RoundingStrategy, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Yuan(Decimal);

impl Yuan {
    pub const ZERO: Yuan = Yuan(Decimal::ZERO);

    /// Round any decimal to yuan with two places, half-up.
    pub fn new(d: Decimal) -> Yuan {
        Yuan(d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    pub fn from_fen(fen: i64) -> Yuan {
        Yuan(Decimal::new(fen, 2))
    }

    /// Parse a user's amount: digits with at most two decimals, not negative.
    pub fn parse(raw: &str) -> Result<Yuan, &'static str> {
        let s = raw.trim().replace([',', '，'], "");
        let s = s.trim_start_matches('¥').trim_start_matches('￥');
        let d = Decimal::from_str(s).map_err(|_| "请输入金额，例如 12345.67")?;
        if d.is_sign_negative() {
            return Err("金额不能为负数");
        }
        if d.scale() > 2 && d != d.round_dp(2) {
            return Err("金额最多保留两位小数");
        }
        if d > Decimal::from(1_000_000_000_000i64) {
            return Err("金额过大");
        }
        Ok(Yuan::new(d))
    }

    pub fn fen(&self) -> i64 {
        (self.0 * Decimal::from(100)).to_i64().unwrap_or(i64::MAX)
    }

    pub fn decimal(&self) -> Decimal {
        self.0
    }

    /// The amount in 万元 (ten-thousands of yuan) with two places, as instruments are shown.
    pub fn wan(&self) -> String {
        let w = (self.0 / Decimal::from(10_000))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        format!("{w:.2}")
    }
}

impl fmt::Display for Yuan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Serialize for Yuan {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Yuan {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            N(serde_json::Number),
        }
        let s = match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::N(n) => n.to_string(),
        };
        Yuan::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_half_up_to_the_fen() {
        let d = Decimal::from_str("12345.675").unwrap() * Decimal::from_str("0.4").unwrap();
        assert_eq!(Yuan::new(d).to_string(), "4938.27");
        assert_eq!(
            Yuan::new(Decimal::from_str("0.005").unwrap()).to_string(),
            "0.01"
        );
    }

    #[test]
    fn fen_round_trip() {
        let y = Yuan::parse("1,234.5").unwrap();
        assert_eq!(y.fen(), 123450);
        assert_eq!(Yuan::from_fen(123450).to_string(), "1234.50");
    }

    #[test]
    fn negative_or_over_precise_amounts_are_rejected() {
        assert!(Yuan::parse("-1").is_err());
        assert!(Yuan::parse("1.234").is_err());
        assert!(Yuan::parse("abc").is_err());
    }

    #[test]
    fn value_is_shown_in_wan_yuan() {
        assert_eq!(Yuan::parse("1850000").unwrap().wan(), "185.00");
    }
}
