//! labshare — 科研设施与仪器共享服务平台 (research-instrument sharing platform).
//!
//! Layers, one direction: `web` → domain modules (`units`, `instruments`, …) → `store`.

pub mod app;
pub mod auth;
pub mod calendar;
pub mod catalog;
pub mod changes;
pub mod cli;
pub mod clock;
pub mod config;
pub mod consultations;
pub mod content;
pub mod demo;
pub mod domain;
pub mod email_actions;
pub mod error;
pub mod evaluations;
pub mod experts;
pub mod feeds;
pub mod httpbench;
pub mod instruments;
pub mod jobs;
pub mod loadtest;
pub mod mail;
pub mod money;
pub mod notify;
pub mod pagecache;
pub mod published;
pub mod records;
pub mod reporting;
pub mod resources;
pub mod search;
pub mod server;
pub mod settings;
pub mod spreadsheets;
pub mod statistics;
pub mod statsbench;
pub mod store;
pub mod templating;
pub mod transfer;
pub mod units;
pub mod uploads;
pub mod web;
pub mod workflow;
