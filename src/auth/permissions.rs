//! Permissions (权限) and the five built-in roles (内置角色). Routes name the permission they
//! need; roles are sets of permissions; administrators may define custom roles from this list.

use serde::Serialize;

/// Every permission the platform checks, with its Chinese label for the console.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Permission {
    ConsoleAccess,
    UserManage,
    RoleManage,
    SystemConfig,
    WorkflowEdit,
    JobManage,
    AuditView,
    ContentManage,
    UnitReview,
    InstrumentReview,
    ResourceReview,
    VoucherManage,
    EvaluationManage,
    SubsidyManage,
    StatsView,
    UnitManage,
    InstrumentManage,
    BookingHandle,
    BookingCreate,
    VoucherApply,
    RedemptionApply,
    EvaluationDeclare,
    EvaluationReview,
    ExpertConsult,
}

impl Permission {
    pub const ALL: [Permission; 24] = [
        Permission::ConsoleAccess,
        Permission::UserManage,
        Permission::RoleManage,
        Permission::SystemConfig,
        Permission::WorkflowEdit,
        Permission::JobManage,
        Permission::AuditView,
        Permission::ContentManage,
        Permission::UnitReview,
        Permission::InstrumentReview,
        Permission::ResourceReview,
        Permission::VoucherManage,
        Permission::EvaluationManage,
        Permission::SubsidyManage,
        Permission::StatsView,
        Permission::UnitManage,
        Permission::InstrumentManage,
        Permission::BookingHandle,
        Permission::BookingCreate,
        Permission::VoucherApply,
        Permission::RedemptionApply,
        Permission::EvaluationDeclare,
        Permission::EvaluationReview,
        Permission::ExpertConsult,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Permission::ConsoleAccess => "console.access",
            Permission::UserManage => "user.manage",
            Permission::RoleManage => "role.manage",
            Permission::SystemConfig => "system.config",
            Permission::WorkflowEdit => "workflow.edit",
            Permission::JobManage => "job.manage",
            Permission::AuditView => "audit.view",
            Permission::ContentManage => "content.manage",
            Permission::UnitReview => "unit.review",
            Permission::InstrumentReview => "instrument.review",
            Permission::ResourceReview => "resource.review",
            Permission::VoucherManage => "voucher.manage",
            Permission::EvaluationManage => "evaluation.manage",
            Permission::SubsidyManage => "subsidy.manage",
            Permission::StatsView => "stats.view",
            Permission::UnitManage => "unit.manage",
            Permission::InstrumentManage => "instrument.manage",
            Permission::BookingHandle => "booking.handle",
            Permission::BookingCreate => "booking.create",
            Permission::VoucherApply => "voucher.apply",
            Permission::RedemptionApply => "redemption.apply",
            Permission::EvaluationDeclare => "evaluation.declare",
            Permission::EvaluationReview => "evaluation.review",
            Permission::ExpertConsult => "expert.consult",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Permission::ConsoleAccess => "进入后台",
            Permission::UserManage => "用户管理",
            Permission::RoleManage => "角色与权限管理",
            Permission::SystemConfig => "系统配置",
            Permission::WorkflowEdit => "流程定义管理",
            Permission::JobManage => "定时任务管理",
            Permission::AuditView => "查看审计日志",
            Permission::ContentManage => "资讯发布（动态、公告、政策）",
            Permission::UnitReview => "单位与专家认证审核",
            Permission::InstrumentReview => "仪器入网审核",
            Permission::ResourceReview => "平台、服务、成果与信息上报审核",
            Permission::VoucherManage => "创新券管理",
            Permission::EvaluationManage => "绩效考核管理",
            Permission::SubsidyManage => "补贴结算管理",
            Permission::StatsView => "统计分析",
            Permission::UnitManage => "维护本单位信息与成员",
            Permission::InstrumentManage => "维护本单位仪器、平台、服务与成果",
            Permission::BookingHandle => "处理本单位收到的预约",
            Permission::BookingCreate => "预约仪器与服务",
            Permission::VoucherApply => "申请创新券",
            Permission::RedemptionApply => "申请创新券兑付",
            Permission::EvaluationDeclare => "绩效评价申报",
            Permission::EvaluationReview => "绩效评价评审",
            Permission::ExpertConsult => "专家咨询",
        }
    }

    pub fn from_key(key: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.key() == key)
    }
}

/// A built-in role: its key (as in the contract), name and permissions.
pub struct BuiltinRole {
    pub key: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: &'static [Permission],
}

use Permission as P;

pub const BUILTIN_ROLES: [BuiltinRole; 5] = [
    BuiltinRole {
        key: "system_admin",
        name: "系统管理员",
        description: "平台配置、用户与权限分配、数据对接、自定义角色",
        permissions: &[
            P::ConsoleAccess,
            P::UserManage,
            P::RoleManage,
            P::SystemConfig,
            P::WorkflowEdit,
            P::JobManage,
            P::AuditView,
            P::StatsView,
        ],
    },
    BuiltinRole {
        key: "platform_admin",
        name: "平台管理员",
        description: "市科技局：发布资讯、入网审核、绩效考核、创新券与补贴管理",
        permissions: &[
            P::ConsoleAccess,
            P::ContentManage,
            P::UnitReview,
            P::InstrumentReview,
            P::ResourceReview,
            P::VoucherManage,
            P::EvaluationManage,
            P::SubsidyManage,
            P::StatsView,
            P::AuditView,
        ],
    },
    BuiltinRole {
        key: "unit_manager",
        name: "管理单位用户",
        description: "仪器所属单位：单位信息、仪器、服务、预约、服务记录、绩效评价申报",
        permissions: &[
            P::ConsoleAccess,
            P::UnitManage,
            P::InstrumentManage,
            P::BookingHandle,
            P::BookingCreate,
            P::RedemptionApply,
            P::EvaluationDeclare,
        ],
    },
    BuiltinRole {
        key: "expert",
        name: "专家用户",
        description: "专家咨询、绩效评价评审",
        permissions: &[P::ConsoleAccess, P::EvaluationReview, P::ExpertConsult],
    },
    BuiltinRole {
        key: "user",
        name: "普通用户",
        description: "用户单位（企业、团队）：单位认证、预约仪器与服务、申请和使用创新券",
        permissions: &[
            P::ConsoleAccess,
            P::UnitManage,
            P::BookingCreate,
            P::VoucherApply,
        ],
    },
];

pub fn builtin_role(key: &str) -> Option<&'static BuiltinRole> {
    BUILTIN_ROLES.iter().find(|r| r.key == key)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn permission_keys_are_unique_and_round_trip() {
        let keys: HashSet<_> = Permission::ALL.iter().map(|p| p.key()).collect();
        assert_eq!(keys.len(), Permission::ALL.len());
        for p in Permission::ALL {
            assert_eq!(Permission::from_key(p.key()), Some(p));
        }
    }

    #[test]
    fn only_platform_admins_review_instruments() {
        let reviewers: Vec<_> = BUILTIN_ROLES
            .iter()
            .filter(|r| r.permissions.contains(&Permission::InstrumentReview))
            .map(|r| r.key)
            .collect();
        assert_eq!(reviewers, ["platform_admin"]);
    }
}
