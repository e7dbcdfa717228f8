//! jobtrail: a local, queryable SQLite history of Huawei Cloud asynchronous jobs.
//!
//! Data flows one way: config → client (auth, retry, limits) → sources → normalize
//! → store → query/report.

pub mod auth;
pub mod config;
pub mod http;
pub mod lock;
pub mod model;
pub mod normalize;
pub mod sim;
pub mod sources;
pub mod store;

#[cfg(test)]
mod fuzz_tests;
