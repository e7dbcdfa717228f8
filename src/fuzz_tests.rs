//! Property tests: no parser of API responses, configuration or credentials panics on any input.
