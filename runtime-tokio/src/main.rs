//! The `sluice` command: the broker (`sluice broker`) and the admin and client tools
//! (`sluice topic`, `sluice produce`, `sluice consume`, `sluice cluster`, `sluice group`).
//!
//! Exit codes: 0 success, 1 a failed operation (the message says why), 2 bad usage (clap).

use clap::{Parser, Subcommand};
use sluice::{config, groups, tools};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Sluice: a Kafka-compatible event-streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a broker (defaults: clients on 127.0.0.1:9092, data in ./data, metrics on 127.0.0.1:9644).
    Broker(BrokerArgs),
    /// Create, list, describe or delete topics.
    Topic {
        #[command(subcommand)]
        action: tools::TopicAction,
    },
    /// Produce lines from standard input as records (one record per line).
    Produce(tools::ProduceArgs),
    /// Print records of a topic partition to standard output.
    Consume(tools::ConsumeArgs),
    /// Show the cluster: brokers, the controller, and every partition's replicas.
    Cluster {
        #[command(subcommand)]
        action: tools::ClusterAction,
    },
    /// List, describe or delete consumer groups, or reset their committed offsets.
    Group {
        #[command(subcommand)]
        action: groups::GroupAction,
    },
}

#[derive(clap::Args, Debug)]
struct BrokerArgs {
    /// TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where partitions, the catalogue and Raft state live.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for Kafka clients, HOST:PORT.
    #[arg(long)]
    listen: Option<String>,
    /// Address advertised to clients in Metadata (default: the listen address).
    #[arg(long)]
    advertised_listener: Option<String>,
    /// Address for the Prometheus endpoint (`/metrics`); an empty string disables it.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// Create unknown topics when a client asks for their metadata.
    #[arg(long)]
    auto_create_topics: bool,
    /// Broker id (default 1); unique in the cluster.
    #[arg(long)]
    node_id: Option<i32>,
    /// Address for other brokers, HOST:PORT (default: this node's entry in --voters, else
    /// 127.0.0.1:9093).
    #[arg(long)]
    peer_listen: Option<String>,
    /// Address other brokers are told to connect to (default: the peer listen address).
    #[arg(long)]
    advertised_peer: Option<String>,
    /// The metadata voters' peer addresses, ID=HOST:PORT,... (e.g.
    /// 1=10.0.0.1:9093,2=10.0.0.2:9093,3=10.0.0.3:9093); the same list on every broker.
    /// Without it the broker runs alone, as its own controller.
    #[arg(long, value_delimiter = ',')]
    voters: Option<Vec<String>>,
    /// Replicas of topics created without a replication factor (capped by the live brokers).
    #[arg(long)]
    default_replication_factor: Option<u16>,
    /// Partitions of the __consumer_offsets topic (default 16), used when it is created: a
    /// group's partition is a hash of its id modulo this count, so it cannot change later.
    #[arg(long, visible_alias = "offsets-topic-num-partitions")]
    offsets_topic_partitions: Option<u32>,
    /// Replicas of the __consumer_offsets topic (default 3, capped by the brokers of the
    /// cluster), used when it is created.
    #[arg(long)]
    offsets_topic_replication_factor: Option<u16>,
    /// How long the first rebalance of an empty group waits for more members to join
    /// (default 3000; 0 starts at once, handy in tests).
    #[arg(long)]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// The shortest session timeout a group member may ask for (default 6000).
    #[arg(long)]
    group_min_session_timeout_ms: Option<u64>,
    /// The longest session timeout a group member may ask for (default 1800000, 30 minutes).
    #[arg(long)]
    group_max_session_timeout_ms: Option<u64>,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Broker(args) => run_broker(args),
        Command::Topic { action } => tools::topic(action),
        Command::Produce(args) => tools::produce(args),
        Command::Consume(args) => tools::consume(args),
        Command::Cluster { action } => tools::cluster(action),
        Command::Group { action } => groups::group(action),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run_broker(args: BrokerArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut settings = match &args.config {
        Some(path) => config::Settings::from_file(path)?,
        None => config::Settings::default(),
    };
    if let Some(d) = args.data_dir {
        settings.data_dir = d;
    }
    if let Some(l) = args.listen {
        settings.listen = l;
    }
    if let Some(a) = args.advertised_listener {
        settings.advertised_listener = Some(a);
    }
    if let Some(m) = args.metrics_listen {
        settings.metrics_listen = m;
    }
    if let Some(n) = args.node_id {
        settings.node_id = n;
    }
    if let Some(p) = args.peer_listen {
        settings.peer_listen = Some(p);
    }
    if let Some(p) = args.advertised_peer {
        settings.advertised_peer = Some(p);
    }
    if let Some(v) = args.voters {
        settings.voters = v.into_iter().filter(|v| !v.trim().is_empty()).collect();
    }
    if let Some(rf) = args.default_replication_factor {
        settings.default_replication_factor = rf;
    }
    if let Some(n) = args.offsets_topic_partitions {
        settings.offsets_topic_num_partitions = n;
    }
    if let Some(rf) = args.offsets_topic_replication_factor {
        settings.offsets_topic_replication_factor = rf;
    }
    if let Some(ms) = args.group_initial_rebalance_delay_ms {
        settings.group_initial_rebalance_delay_ms = ms;
    }
    if let Some(ms) = args.group_min_session_timeout_ms {
        settings.group_min_session_timeout_ms = ms;
    }
    if let Some(ms) = args.group_max_session_timeout_ms {
        settings.group_max_session_timeout_ms = ms;
    }
    if args.auto_create_topics {
        settings.auto_create_topics = true;
    }
    settings.validate()?;
    #[cfg(not(madsim))]
    return sluice::server::run(settings);
    // A `--cfg madsim` build is a simulation: its brokers run inside tests/madsim.
    #[cfg(madsim)]
    return Err("this is a --cfg madsim build; its brokers run only in tests/madsim".into());
}
