//! labshare — 科研设施与仪器共享服务平台 (research-instrument sharing platform).
//!
//! Layers, one direction: `web` → domain modules (`units`, `instruments`, …) → `store`.

pub mod auth;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod content;
pub mod demo;
pub mod domain;
pub mod error;
pub mod instruments;
pub mod resources;
pub mod search;
pub mod server;
pub mod store;
pub mod units;
pub mod web;
