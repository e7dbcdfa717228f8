//! jobtrail: a local, queryable SQLite history of Huawei Cloud asynchronous jobs.
//!
//! Data flows one way: config → client (auth, retry, limits) → sources → normalize
//! → store → query/report.

pub mod model;
pub mod normalize;
pub mod output;
pub mod query;
pub mod report;
pub mod status;
pub mod store;
