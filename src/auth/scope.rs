//! Permissions that follow the unit (权限随单位): the manager of a certified managing unit may
//! do for it what the built-in `unit_manager` role allows, the manager of a certified user unit
//! what the `user` role allows — scoped to that unit, gone once it is no longer certified.

use std::collections::{BTreeMap, BTreeSet};

use super::{Membership, builtin_role};

/// The built-in role whose permissions a certified unit of this kind gives its managers.
pub fn role_for_kind(kind: &str) -> Option<&'static str> {
    match kind {
        "managing" => Some("unit_manager"),
        "user" => Some("user"),
        _ => None,
    }
}

/// Per unit the user manages and that is certified, the permissions it gives them.
pub fn unit_grants(units: &[Membership]) -> BTreeMap<i64, BTreeSet<String>> {
    units
        .iter()
        .filter(|m| m.role == "manager" && m.certification_status == "certified")
        .filter_map(|m| {
            let role = builtin_role(role_for_kind(&m.kind)?)?;
            Some((
                m.id,
                role.permissions
                    .iter()
                    .map(|p| p.key().to_string())
                    .collect(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission;

    fn m(id: i64, kind: &str, role: &str, status: &str) -> Membership {
        Membership {
            id,
            name: format!("单位{id}"),
            kind: kind.into(),
            role: role.into(),
            certification_status: status.into(),
        }
    }

    #[test]
    fn only_managers_of_certified_units_get_the_units_permissions() {
        let grants = unit_grants(&[
            m(1, "managing", "manager", "certified"),
            m(2, "managing", "manager", "pending"),
            m(3, "managing", "member", "certified"),
            m(4, "user", "manager", "certified"),
        ]);
        assert_eq!(grants.keys().copied().collect::<Vec<_>>(), [1, 4]);
        assert!(grants[&1].contains(Permission::InstrumentManage.key()));
        assert!(!grants[&4].contains(Permission::InstrumentManage.key()));
        assert!(grants[&4].contains(Permission::VoucherApply.key()));
    }
}
