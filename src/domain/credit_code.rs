//! Unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a
//! check character computed from the first 17 with weights 3^i mod 31.

use std::fmt;

const ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditCode(String);

fn value_of(c: char) -> Option<u32> {
    ALPHABET.find(c).map(|i| i as u32)
}

impl CreditCode {
    /// The check character for the first 17 characters, if they are all valid.
    pub fn check_char(first17: &str) -> Option<char> {
        if first17.chars().count() != 17 {
            return None;
        }
        let mut sum = 0;
        for (c, w) in first17.chars().zip(WEIGHTS) {
            sum += value_of(c)? * w;
        }
        let check = (31 - sum % 31) % 31;
        ALPHABET.chars().nth(check as usize)
    }

    pub fn parse(raw: &str) -> Result<CreditCode, &'static str> {
        let s: String = raw.trim().to_uppercase();
        if s.chars().count() != 18 {
            return Err("统一社会信用代码应为 18 位");
        }
        if !s.chars().all(|c| value_of(c).is_some()) {
            return Err("统一社会信用代码只能包含数字和大写字母（不含 I、O、Z、S、V）");
        }
        let (body, last) = s.split_at(17);
        match Self::check_char(body) {
            Some(c) if last.starts_with(c) => Ok(CreditCode(s)),
            _ => Err("统一社会信用代码校验位不正确，请核对"),
        }
    }

    /// Complete 17 characters with their check character (demo data and tests).
    pub fn complete(first17: &str) -> Option<CreditCode> {
        Self::check_char(first17).map(|c| CreditCode(format!("{first17}{c}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_credit_code_is_accepted() {
        // Huawei Technologies Co., Ltd., as printed on its business licence.
        assert!(CreditCode::parse("914403001922038216").is_ok());
        // Lower case input is normalised.
        assert_eq!(
            CreditCode::parse("91440300192203821 6".replace(' ', "").as_str())
                .unwrap()
                .as_str(),
            "914403001922038216"
        );
    }

    #[test]
    fn a_credit_code_with_a_wrong_check_character_is_rejected() {
        assert_eq!(
            CreditCode::parse("914403001922038217"),
            Err("统一社会信用代码校验位不正确，请核对")
        );
    }

    #[test]
    fn a_credit_code_of_the_wrong_length_or_alphabet_is_rejected() {
        assert!(CreditCode::parse("91440300192203821").is_err());
        assert!(CreditCode::parse("91440300192203821O").is_err());
    }

    #[test]
    fn completing_seventeen_characters_gives_a_valid_code() {
        let code = CreditCode::complete("12410000MB0000001").unwrap();
        assert!(CreditCode::parse(code.as_str()).is_ok());
    }
}
