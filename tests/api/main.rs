//! Integration tests: the real app on port 0 against a fresh database (SQLite by default,
//! PostgreSQL when `LABSHARE_TEST_DATABASE_URL` is set). One binary keeps link time down.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod backup;
mod booking_plus;
mod calendar;
mod cli;
mod consult_transfer;
mod content;
mod deferred;
mod demo;
mod email_actions;
mod evaluations;
mod experts;
mod flow_designer;
mod hardening;
mod injection;
mod jobs;
mod metrics;
mod money;
mod nodes;
mod page_cache;
mod pages;
mod permissions;
mod platform_config;
mod pool;
mod properties;
mod records;
mod redemptions;
mod reports;
mod reports_more;
mod resources;
mod schema;
mod search;
mod security_matrix;
mod self_service;
mod settlements;
mod statistics;
mod statistics_bench;
mod testing_orders;
mod uploads;
mod workflow;
