fn main() {
    eprintln!("manticore-sim: not available yet");
    std::process::exit(1);
}
