fn main() -> std::process::ExitCode {
    shardbuddy::cli::main()
}
