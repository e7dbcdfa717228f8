//! Integration tests: the simulated cloud on 127.0.0.1 (ephemeral port), a
//! temporary database, and the real `jobtrail` binary. Nothing here needs the
//! internet or real credentials.

mod util;

mod auth;
mod faults;
mod first_run;
mod hostile_files;
mod incremental;
mod reporting;
mod sources;
mod sync_nosql;
