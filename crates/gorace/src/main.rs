fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if args.first().map(|a| a == "scan").unwrap_or(false) {
        std::process::exit(gorace_scan::cli::run(&args[1..]));
    }
    eprintln!("gorace: work in progress");
    std::process::exit(2);
}
