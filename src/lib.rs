//! jobtrail: a local, queryable SQLite history of Huawei Cloud asynchronous jobs.
//!
//! Data flows one way: config → client (auth, retry, limits) → sources → normalize
//! → store → query/report.

pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod files;
pub mod http;
pub mod init;
pub mod model;
pub mod normalize;
pub mod output;
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
