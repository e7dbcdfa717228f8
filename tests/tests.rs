//! Integration tests: the simulated cloud on 127.0.0.1 (ephemeral port), a
//! temporary database, and the real `jobtrail` binary. Nothing here needs the
//! internet or real credentials.

#[macro_use]
mod util;

mod account;
mod auth;
mod copy;
mod faults;
mod fidelity;
mod first_run;
mod hostile_cloud;
mod hostile_files;
mod hostile_output;
mod incremental;
mod lock_lost;
mod ops;
mod postgres;
mod progress;
mod reporting;
mod scopes;
mod simulate;
mod sources;
mod sync_nosql;
