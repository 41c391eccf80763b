fn main() -> std::process::ExitCode {
    confide::cli::main()
}
