//! The `sluice` command: the product binary. The broker, admin and client subcommands arrive
//! with the Kafka wire protocol and storage engine; until then it reports its version.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible event-streaming platform"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    println!(
        "sluice {}: the broker is not built yet; see README.md",
        env!("CARGO_PKG_VERSION")
    );
}
