//! jobtrail: a local, queryable SQLite history of Huawei Cloud asynchronous jobs.
//!
//! Data flows one way: config → client (auth, retry, limits) → IAM (which
//! projects) → sources → normalize → store → query/report.

pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod files;
pub mod http;
pub mod iam;
pub mod init;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod output;
pub mod ping;
pub mod progress;
pub mod query;
pub mod regions;
pub mod report;
pub mod sim;
pub mod sources;
pub mod status;
pub mod store;
pub mod sync;
pub mod text;

#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
pub(crate) mod test_support;
