//! The `log` backend: one console line per record, `[name] I message`. The
//! hypervisor prefixes each line with the domain (`(dN)`), so this stays
//! short. The level comes from the command line word `loglvl=` (`error`,
//! `warn`, `info`, `debug`, `trace`, `off`, or 0..=5); the default is info.

use core::fmt::{self, Write};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::console::{console_line, LineWriter};

/// The level when the command line names none (or an unknown one).
pub const DEFAULT_LEVEL: LevelFilter = LevelFilter::Info;

/// Parses a `loglvl=` value.
pub fn parse_level(value: &str) -> Option<LevelFilter> {
    Some(match value {
        "off" | "0" => LevelFilter::Off,
        "error" | "1" => LevelFilter::Error,
        "warn" | "warning" | "2" => LevelFilter::Warn,
        "info" | "3" => LevelFilter::Info,
        "debug" | "4" => LevelFilter::Debug,
        "trace" | "all" | "5" => LevelFilter::Trace,
        _ => return None,
    })
}

/// The level letter of a record.
pub fn level_letter(level: Level) -> char {
    match level {
        Level::Error => 'E',
        Level::Warn => 'W',
        Level::Info => 'I',
        Level::Debug => 'D',
        Level::Trace => 'T',
    }
}

/// Writes one record (without the line end) as `[name] L message`.
pub fn format_record<F: FnMut(&[u8])>(
    writer: &mut LineWriter<F>,
    name: &str,
    level: Level,
    message: fmt::Arguments<'_>,
) -> fmt::Result {
    write!(writer, "[{name}] {} {message}", level_letter(level))
}

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let name = crate::start::start_info().map_or("?", |info| info.name());
        let mut line = console_line();
        let _ = format_record(&mut line, name, record.level(), *record.args());
        line.finish();
    }

    fn flush(&self) {}
}

/// Installs the console logger at the level `loglvl=` in `command_line`
/// asks for. Only the first call installs; later ones just set the level.
pub fn init(command_line: &str) {
    let level = crate::command_line::find(command_line, "loglvl").and_then(parse_level).unwrap_or(DEFAULT_LEVEL);
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("debug"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("0"), Some(LevelFilter::Off));
        assert_eq!(parse_level("5"), Some(LevelFilter::Trace));
        assert_eq!(parse_level("loud"), None);
    }

    #[test]
    fn record_format() {
        let mut out = Vec::new();
        let mut writer = LineWriter::new(|bytes: &[u8]| out.extend_from_slice(bytes));
        format_record(&mut writer, "probe", Level::Warn, format_args!("x = {}", 3)).unwrap();
        writer.finish();
        assert_eq!(out, b"[probe] W x = 3\n");
    }
}
