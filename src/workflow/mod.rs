//! The approval engine (审批流程引擎): definitions as data in `workflows/*.yaml`, versioned in
//! the database, run as instances with tasks; every decision is one transaction with a
//! compare-and-swap on the instance and an entry in the hash-chained audit log.

pub mod audit;
pub mod bench;
pub mod def;
pub mod designer;
pub mod diagram;
mod fields;
pub mod hooks;
pub mod layout;
mod queries;
mod queue;
mod registry;
pub mod simulate;
mod versions;

pub use fields::*;
pub use queries::*;
pub use queue::*;
pub use registry::*;
pub use versions::*;

mod context;
mod deadlines;
mod decide;
mod delegation;
mod store;
mod transitions;
use transitions::{enter_state, move_to};

pub use context::*;
pub use decide::Decision;
pub use delegation::{Delegation, create_delegation, delegations_of, end_delegation};
pub use store::*;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, OnceLock, RwLock},
};

use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Column, Row};

pub use def::{Definition, Problem};
pub use hooks::{Catalog, Hook, Subject, UnitOf};

use crate::{
    auth::CurrentUser,
    clock::Clock,
    error::{AppError, Result},
    store::{Db, Touch},
};

/// The approval engine: the definitions plus the database and clock it runs them on. It
/// owns starting, deciding, withdrawing and deadlines; it names no domain module.
pub struct Engine {
    /// The loaded, published definitions (reloadable at run time).
    pub definitions: Registry,
    db: Db,
    clock: Clock,
}

fn already_running() -> AppError {
    AppError::conflict("already_running", "该事项已在审批中，请勿重复提交")
}

// ---- runtime -----------------------------------------------------------------------------

#[derive(Clone, Debug, Serialize)]
pub struct Started {
    pub instance_id: i64,
    pub state: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub instance_id: i64,
    pub state: String,
    pub status: String,
}

impl Engine {
    pub fn new(definitions: Registry, db: Db, clock: Clock) -> Engine {
        Engine {
            definitions,
            db,
            clock,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ts()
    }

    /// Start an instance of flow `key` for a subject in a transaction of its own.
    pub async fn start(
        &self,
        key: &str,
        subject_type: &str,
        subject_id: i64,
        applicant_user_id: i64,
        data: Value,
    ) -> Result<Started> {
        let mut tx = self.db.begin_write().await?;
        let started = self
            .start_in(
                &mut tx,
                key,
                subject_type,
                subject_id,
                applicant_user_id,
                data,
            )
            .await?;
        tx.commit().await?;
        Ok(started)
    }

    /// Start an instance inside the caller's write transaction, so a record is created and
    /// its flow started as one change (nothing to clean up when either fails).
    pub async fn start_in(
        &self,
        tx: &mut crate::store::Conn,
        key: &str,
        subject_type: &str,
        subject_id: i64,
        applicant_user_id: i64,
        data: Value,
    ) -> Result<Started> {
        let d = self.definitions.get(key).ok_or_else(|| {
            AppError::unprocessable("unknown_workflow", format!("流程 `{key}` 不存在或未发布"))
        })?;
        if d.subject != subject_type {
            return Err(AppError::unprocessable(
                "wrong_subject",
                format!(
                    "流程 `{key}` 的审批对象是 {}，不是 {subject_type}",
                    d.subject
                ),
            ));
        }
        let now = self.now();
        let running: Option<(i64,)> = sqlx::query_as("SELECT id FROM workflow_instances WHERE workflow_key = $1 AND subject_type = $2 AND subject_id = $3 AND status = 'running'")
            .bind(key)
            .bind(subject_type)
            .bind(subject_id)
            .fetch_optional(&mut *tx)
            .await?;
        if running.is_some() {
            return Err(already_running());
        }
        let unit_id = match self.definitions.catalog().subject(subject_type) {
            // A subject may belong to no unit (a settlement): then nobody is recused.
            Some(s) => s.unit_of(tx, subject_id).await?,
            None => data.get("unit_id").and_then(Value::as_i64),
        };
        let id: i64 = sqlx::query_scalar(
        "INSERT INTO workflow_instances (workflow_key, version, subject_type, subject_id, unit_id, applicant_id, state, status, round, data, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', 1, $8, $9, $9) RETURNING id",
    )
    .bind(key)
    .bind(d.version)
    .bind(subject_type)
    .bind(subject_id)
    .bind(unit_id)
    .bind(applicant_user_id)
    .bind(&d.initial)
    .bind(data.to_string())
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        // Two concurrent starts: the partial unique index on running instances lets one in
        // (PostgreSQL makes the second wait for the first, then refuses it).
        if crate::store::is_unique_violation(&e) {
            already_running()
        } else {
            AppError::Database(e)
        }
    })?;
        let inst = load_instance(&mut *tx, id).await?;
        let cat = self.definitions.catalog();
        let ctx = expr_ctx(cat, &mut *tx, &d, &inst, &Value::Null).await?;
        if let Some(g) = &d.guard {
            check_guard(g, &ctx)?;
        }
        enter_state(cat, &mut *tx, &d, &inst, &d.initial, 1, now, &ctx).await?;
        audit::append(
            &mut *tx,
            audit::Entry {
                instance_id: id,
                at: now,
                actor_id: Some(applicant_user_id),
                workflow_key: key,
                version: d.version,
                state: "",
                action: "start",
                to_state: &d.initial,
                comment: "",
                data: &data.to_string(),
            },
        )
        .await?;
        Ok(Started {
            instance_id: id,
            state: d.initial.clone(),
        })
    }
}
