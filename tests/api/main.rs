//! Integration tests: the real app on port 0 against a fresh database (SQLite by default,
//! PostgreSQL when `LABSHARE_TEST_DATABASE_URL` is set). One binary keeps link time down.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod backup;
mod calendar;
mod cli;
mod content;
mod demo;
mod email_actions;
mod evaluations;
mod experts;
mod hardening;
mod injection;
mod jobs;
mod metrics;
mod money;
mod nodes;
mod pages;
mod permissions;
mod properties;
mod records;
mod redemptions;
mod reports;
mod resources;
mod schema;
mod search;
mod security_matrix;
mod settlements;
mod statistics;
mod statistics_bench;
mod testing_orders;
mod uploads;
mod workflow;
