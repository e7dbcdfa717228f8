//! Diagnostics on stderr: one event, one line, in the format `--log-format`
//! chose. Text lines show whatever came from outside (a job name, an API's
//! message, an ID) with its control characters escaped; in JSON mode every
//! stderr line is a JSON object, the final error included.

use std::fmt;
use std::io::{self, IsTerminal, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

use crate::cli::{GlobalArgs, LogFormat};
use crate::text::{for_terminal, for_terminal_lines, json_terminal_safe};

/// Sets up logging to stderr: `JOBTRAIL_LOG` if set, else warnings (-v info,
/// -vv debug, -vvv trace; -q errors only). ANSI colours only on a terminal.
pub fn init(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (q, _) if q > 0 => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let crate_level = format!(
        "jobtrail={level},{}",
        if global.verbose >= 3 { "info" } else { "warn" }
    );
    let filter =
        EnvFilter::try_from_env("JOBTRAIL_LOG").unwrap_or_else(|_| EnvFilter::new(crate_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = match global.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_writer(|| JsonStderr)
            .try_init(),
        LogFormat::Text => builder
            .fmt_fields(EscapedFields)
            .with_writer(io::stderr)
            .with_ansi(io::stderr().is_terminal())
            .try_init(),
    };
}

/// Says why the run failed, last thing on stderr: `error: …` (several lines
/// only where the message has them, as a configuration error quoting its
/// line), or one JSON object like the log's.
pub fn report_error(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => {
            let _ = writeln!(
                io::stderr().lock(),
                "error: {}",
                for_terminal_lines(message)
            );
        }
        LogFormat::Json => json_line("ERROR", message),
    }
}

/// A line for the person running the command that is not a log event (it
/// shows whatever the log filter), as plain text or as a JSON object.
pub fn notice(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => {
            let _ = writeln!(io::stderr().lock(), "{}", for_terminal(message));
        }
        LogFormat::Json => json_line("INFO", message),
    }
}

/// Whether the raw arguments ask for JSON logs: for a command line that does
/// not parse, whose error must still be JSON then.
pub fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut previous_was_flag = false;
    for arg in args {
        if arg == "--log-format=json" || (previous_was_flag && arg == "json") {
            return true;
        }
        previous_was_flag = arg == "--log-format";
    }
    false
}

/// A JSON line with the fields, in the order, of the log's own lines.
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    timestamp: String,
    level: &'a str,
    message: &'a str,
}

/// One JSON object with the fields the log's JSON lines have.
fn json_line(level: &str, message: &str) {
    let value = JsonLine {
        timestamp: chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string(),
        level,
        message,
    };
    let mut line = Vec::new();
    if crate::output::write_json_value(&mut line, &value, false).is_ok() {
        line.push(b'\n');
        let _ = io::stderr().lock().write_all(&line);
    }
}

/// stderr for JSON log lines: tracing hands over each formatted event whole,
/// which then leaves with the characters serde_json keeps raw but a terminal
/// could act on (bidirectional-text and C1 controls) as `\u` escapes.
struct JsonStderr;

impl Write for JsonStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        io::stderr()
            .lock()
            .write_all(json_terminal_safe(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Formats an event's (or span's) fields for a text log line, each value with
/// its control characters escaped, so one event stays one line whatever its
/// message holds. Fields as tracing's own: the message, then `name=value`.
struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, name: &str, value: &str) {
        // `log` records bridged into tracing carry their origin as `log.*` fields.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{}", for_terminal(value))
        } else {
            write!(self.writer, "{separator}{name}={}", for_terminal(value))
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.write("message", value);
        } else {
            self.write(field.name(), &format!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field.name(), &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_log_request_is_seen_in_raw_arguments() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert!(json_requested(args(&[
            "jobtrail",
            "--log-format",
            "json",
            "sync"
        ])));
        assert!(json_requested(args(&[
            "jobtrail",
            "sync",
            "--log-format=json"
        ])));
        assert!(!json_requested(args(&["jobtrail", "--log-format", "text"])));
        assert!(!json_requested(args(&["jobtrail", "query", "json"])));
    }

    #[test]
    fn text_fields_are_one_escaped_line() {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&buffer);
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(EscapedFields)
            .without_time()
            .with_ansi(false)
            .with_writer(move || SharedBuffer(std::sync::Arc::clone(&sink)));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let name = "job\u{1b}]0;pwned\u{7}\r\nWARN fake\0\u{202e}";
            tracing::warn!(id = name, detail = %name, "failed: {name}");
        });
        let text = String::from_utf8(buffer.lock().expect("lock").clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            !text
                .trim_end_matches('\n')
                .chars()
                .any(crate::text::is_unsafe_for_terminal),
            "{text:?}"
        );
        assert!(
            text.contains(r"failed: job\x1b]0;pwned\x07\r\nWARN fake\x00\u{202e}"),
            "{text}"
        );
        assert!(text.contains(r"detail=job\x1b]0;pwned"), "{text}");
    }

    struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}
