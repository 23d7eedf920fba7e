//! The `cabinet-db` binary: parse, run, report. Exit codes follow ripgrep: 0 success,
//! 1 a check failed (drift, lint findings), 2 an error.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
};

use cabinet_db::cli::{
    self, Cli,
    failure::FailureReport,
    outcome::Outcome,
    output::{self, is_stdout_closed},
};
use clap::{CommandFactory, FromArgMatches};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let wants_json = args.iter().any(|a| a == "--json");
    // The configuration file's values become the options' defaults before anything parses.
    let command = match cabinet_db::config::load_for(&args).and_then(|file| file.apply(Cli::command())) {
        Ok(command) => command,
        Err(error) => {
            let report = FailureReport { error: error.to_string(), ..FailureReport::default() };
            if wants_json {
                let _ = output::print_json(&report);
            } else {
                let _ = std::io::stderr().write_all(report.to_text().as_bytes());
            }
            return ExitCode::from(2);
        }
    };
    let parsed = command.try_get_matches_from(&args).and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() && wants_json => {
            // Scripts asked for JSON: a usage error is an object too.
            let text = error.to_string();
            let (what, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
            let report = FailureReport {
                error: what.trim_start_matches("error: ").split_whitespace().collect::<Vec<_>>().join(" "),
                hint: Some(rest.trim().to_owned()).filter(|h| !h.is_empty()),
                ..FailureReport::default()
            };
            let _ = output::print_json(&report);
            return ExitCode::from(2);
        }
        Err(error) => error.exit(),
    };
    let default_level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // Colours only for a person at a terminal, and never when NO_COLOR is set.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level)))
        .init();

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json = cli.json;
    match runtime.block_on(cli::run(cli)) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(1),
        // The reader of our output went away (`| head`): nothing more to say, like other tools.
        Err(error) if is_stdout_closed(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let report = FailureReport::from_error(&error);
            if json {
                let _ = output::print_json(&report);
            } else {
                let _ = std::io::stderr().write_all(report.to_text().as_bytes());
            }
            ExitCode::from(2)
        }
    }
}
