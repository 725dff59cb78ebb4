//! `gorace`: Go's race detector with gorace's Rust runtime. A thin front end: the
//! modules do the work (`toolchain` checks the user's Go, `farm` prepares the private
//! GOROOT and cache, `runtime_object` holds the embedded runtime).

mod farm;
mod races;
mod report_cmd;
mod runtime_object;
mod testrun;
mod toolchain;

use clap::{Parser, Subcommand};
use runtime_object::Variant;
use std::ffi::OsString;
use std::process::{Command, ExitCode};

#[derive(Parser)]
#[command(name = "gorace", version, about = "Go's race detector with a Rust runtime", long_about = None)]
struct Cli {
    /// Which runtime to link (`floor` only performs atomics: for benchmarks).
    #[arg(long, value_enum, default_value = "gorace", global = true, hide = true)]
    runtime: Variant,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// `go test -race` with gorace's runtime; every go flag passes through. Ends with a
    /// summary of unique races; `--json-races FILE` also writes them as JSON lines;
    /// under `-json`, races are output events of the test they belong to.
    #[command(disable_help_flag = true)]
    Test(GoArgs),
    /// Convert race JSON lines to SARIF 2.1.0 (`--sarif`) and/or an HTML page (`--html`).
    Report(report_cmd::ReportArgs),
    /// `go build -race` with gorace's runtime.
    #[command(disable_help_flag = true)]
    Build(GoArgs),
    /// `go run -race` with gorace's runtime.
    #[command(disable_help_flag = true)]
    Run(GoArgs),
    /// `go install -race` with gorace's runtime.
    #[command(disable_help_flag = true)]
    Install(GoArgs),
    /// Print shell `export` lines so that a plain `go ... -race` uses gorace:
    /// `eval "$(gorace env)"`.
    Env,
    /// Print gorace's version, its runtime's hash and the supported Go versions.
    Version,
    /// Find compiler-generated race windows in Go binaries (see `gorace scan --help`).
    #[command(disable_help_flag = true)]
    Scan(GoArgs),
}

#[derive(clap::Args)]
struct GoArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<OsString>,
}

/// Checks the user's Go and prepares the private GOROOT and cache.
fn setup(variant: Variant) -> Result<(toolchain::Toolchain, farm::Setup), String> {
    let tc = toolchain::Toolchain::discover()?;
    tc.check(&runtime_object::exports())?;
    let setup = farm::prepare(&tc, variant, &farm::cache_root()?)?;
    Ok((tc, setup))
}

fn env_pairs(s: &farm::Setup) -> Vec<(&'static str, OsString)> {
    let mut path = OsString::from(s.goroot.join("bin"));
    if let Some(p) = std::env::var_os("PATH") {
        path.push(":");
        path.push(p);
    }
    vec![
        ("GOROOT", s.goroot.clone().into()),
        ("GOCACHE", s.gocache.clone().into()),
        ("GOTOOLCHAIN", "local".into()),
        ("PATH", path),
    ]
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn go_command(variant: Variant, sub: &str, args: &[OsString]) -> Result<Command, String> {
    let (_, s) = setup(variant)?;
    let mut cmd = Command::new(s.goroot.join("bin/go"));
    cmd.arg(sub).arg("-race").args(args).envs(env_pairs(&s));
    Ok(cmd)
}

fn run_test(variant: Variant, args: &[OsString]) -> Result<ExitCode, String> {
    let (own, go_args) = testrun::split_args(args)?;
    testrun::run(go_command(variant, "test", &go_args)?, &go_args, &own)
}

fn run_go(variant: Variant, sub: &str, args: &[OsString]) -> Result<ExitCode, String> {
    let mut cmd = go_command(variant, sub, args)?;
    let status = cmd
        .status()
        .map_err(|e| format!("gorace: cannot run go {sub}: {e}"))?;
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Test(a) => run_test(cli.runtime, &a.args),
        Cmd::Report(a) => report_cmd::run(&a),
        Cmd::Build(a) => run_go(cli.runtime, "build", &a.args),
        Cmd::Run(a) => run_go(cli.runtime, "run", &a.args),
        Cmd::Install(a) => run_go(cli.runtime, "install", &a.args),
        Cmd::Scan(a) => Ok(ExitCode::from(
            gorace_scan::cli::run(&a.args).clamp(0, 255) as u8
        )),
        Cmd::Env => setup(cli.runtime).map(|(_, s)| {
            for (k, v) in env_pairs(&s) {
                println!("export {k}={}", shell_quote(&v.to_string_lossy()));
            }
            ExitCode::SUCCESS
        }),
        Cmd::Version => {
            println!(
                "gorace {} (runtime {}), for {} on linux/amd64",
                env!("CARGO_PKG_VERSION"),
                runtime_object::short_hash(Variant::Gorace),
                toolchain::SUPPORTED_SERIES
                    .iter()
                    .map(|s| format!("{s}.x"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    result.unwrap_or_else(|msg| {
        eprintln!("{msg}");
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_flags_pass_through_untouched() {
        let cli = Cli::try_parse_from([
            "gorace", "test", "-count=1", "-v", "-run", "TestX", "./...", "-args", "-h",
        ])
        .unwrap();
        let Cmd::Test(a) = cli.command else { panic!() };
        assert_eq!(
            a.args,
            ["-count=1", "-v", "-run", "TestX", "./...", "-args", "-h"]
        );
        let cli =
            Cli::try_parse_from(["gorace", "--runtime", "floor", "build", "-o", "x"]).unwrap();
        assert_eq!(cli.runtime, Variant::Floor);
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
