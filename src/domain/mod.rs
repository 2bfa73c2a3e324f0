//! Value types that can only hold valid values (领域值类型), each built by `parse`.

mod credit_code;
mod money;

pub use credit_code::CreditCode;
pub use money::Yuan;

/// A mainland mobile number (手机号): 11 digits starting with 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mobile(String);

impl Mobile {
    pub fn parse(raw: &str) -> Result<Mobile, &'static str> {
        let s: String = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let s = s.strip_prefix("+86").unwrap_or(&s).to_string();
        if s.len() == 11 && s.starts_with('1') && s.chars().all(|c| c.is_ascii_digit()) {
            Ok(Mobile(s))
        } else {
            Err("请输入 11 位手机号码")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plausible e-mail address: something@domain.tld, no spaces.
pub fn valid_email(raw: &str) -> bool {
    let raw = raw.trim();
    match raw.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !raw.chars().any(char::is_whitespace)
                && raw.len() <= 254
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mobile_number_with_country_code_and_spaces_is_normalised() {
        assert_eq!(
            Mobile::parse("+86 138 0371 0001").unwrap().as_str(),
            "13803710001"
        );
    }

    #[test]
    fn a_landline_is_not_a_mobile_number() {
        assert!(Mobile::parse("0374-1234567").is_err());
        assert!(Mobile::parse("2380371000").is_err());
    }

    #[test]
    fn email_addresses_need_a_domain_with_a_dot() {
        assert!(valid_email("zhang@xcu.edu.cn"));
        assert!(!valid_email("zhang@localhost"));
        assert!(!valid_email("zhang xcu@edu.cn"));
        assert!(!valid_email("no-at-sign"));
    }
}
