//! Statistics (统计分析): the year's figures, the national indicators with their formulas as
//! policy data, the live self-check, the chart series with filters and drill-down, the open
//! data (公示) and the platform admin's 工作台 figures. Service and booking figures are read
//! from tables the database's triggers keep current in the writing transaction (migration
//! 0017); `measures::raw` counts the same from the source rows.

pub mod dashboard;
pub mod formulas;
pub mod indicators;
pub mod measures;
pub mod open_data;
pub mod series;
mod yearly;

pub use formulas::IndicatorRules;
pub use indicators::{NationalIndicators, SelfCheck, national, self_check};
pub use measures::Scope;
pub use yearly::{Statistics, TopInstrument, for_year};
