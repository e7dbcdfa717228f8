pub mod sigv;
