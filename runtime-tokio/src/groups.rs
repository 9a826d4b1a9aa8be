//! `sluice group list|describe|delete|reset-offsets`: consumer groups as an operator sees them,
//! in the shape of Kafka's kafka-consumer-groups.sh, against any Kafka-compatible cluster.
//!
//! Group requests go to the group's coordinator (FindCoordinator, asked of the bootstrap
//! broker, found again when it moves); `list` asks every live broker, since each lists only
//! the groups it coordinates. Log end offsets come from each partition's leader.
//!
//! Not here: joining a group. The tools never become members, so they cannot disturb one;
//! `reset-offsets` commits outside any generation, which a broker takes only from an empty
//! group.

use crate::client::{backoff, Client, Routed, RETRY_FOR};
use crate::tools::{table, Conn};
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;
use sluice_core::protocol::messages::describe_groups::DescribedGroup;
use sluice_core::protocol::Reader;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Subcommand, Debug)]
pub enum GroupAction {
    /// Every group of the cluster (each live broker lists those it coordinates): protocol
    /// type, state and coordinator.
    List {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// A group's state, members and their assignments, and per partition the committed
    /// offset, the log end offset and the lag.
    Describe {
        group: String,
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a group that has no members, with its committed offsets.
    Delete {
        group: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set a group's committed offsets on one topic (the group must have no members).
    ResetOffsets(ResetArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset"])))]
pub struct ResetArgs {
    group: String,
    #[arg(long, short = 't')]
    topic: String,
    /// Only this partition (default: every partition of the topic).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// The log start offset of each partition.
    #[arg(long)]
    to_earliest: bool,
    /// The log end offset (high watermark) of each partition.
    #[arg(long)]
    to_latest: bool,
    /// This offset, moved into each partition's [log start, log end] if it is outside.
    #[arg(long)]
    to_offset: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    conn: Conn,
}

pub fn group(action: GroupAction) -> Result<(), String> {
    match action {
        GroupAction::List { json, conn } => {
            let listing = list(&conn.bootstrap)?;
            for w in &listing.warnings {
                eprintln!("warning: {w}");
            }
            print!(
                "{}",
                if json {
                    listing.to_json()
                } else {
                    listing.to_text()
                }
            );
        }
        GroupAction::Describe { group, json, conn } => {
            check_group_id(&group)?;
            let d = describe(&conn.bootstrap, &group)?;
            print!("{}", if json { d.to_json() } else { d.to_text() });
        }
        GroupAction::Delete { group, conn } => {
            check_group_id(&group)?;
            let (_, result) = on_coordinator(&conn.bootstrap, &group, |c| c.delete_group(&group))?;
            result.map_err(|e| match code_name(&e) {
                "NON_EMPTY_GROUP" => format!(
                    "group '{group}' still has members: stop its consumers (or wait for their \
                     sessions to time out), then delete it ({e})"
                ),
                "GROUP_ID_NOT_FOUND" => format!("group '{group}' does not exist ({e})"),
                _ => format!("deleting group '{group}': {e}"),
            })?;
            println!("deleted group {group}");
        }
        GroupAction::ResetOffsets(args) => reset_offsets(args)?,
    }
    Ok(())
}

fn check_group_id(group: &str) -> Result<(), String> {
    if group.is_empty() {
        return Err("the group id is empty".into());
    }
    Ok(())
}

/// The Kafka error name an error message of `client::check` starts with.
fn code_name(e: &str) -> &str {
    e.split([' ', ':']).next().unwrap_or("")
}

/// Errors that mean "find the coordinator again, and retry".
fn coordinator_moving(e: &str) -> bool {
    matches!(
        code_name(e),
        "COORDINATOR_LOAD_IN_PROGRESS" | "COORDINATOR_NOT_AVAILABLE" | "NOT_COORDINATOR"
    )
}

/// The broker that coordinates a group.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Coordinator {
    id: i32,
    address: String,
}

/// Runs `op` on the group's coordinator, finding it (through the bootstrap broker) and finding
/// it again when it moves or is still loading, for up to `RETRY_FOR`. The outer error is about
/// reaching the coordinator; the inner one is `op`'s own answer, for the caller to explain.
fn on_coordinator<T>(
    bootstrap: &str,
    group: &str,
    mut op: impl FnMut(&mut Client) -> Result<T, String>,
) -> Result<(Coordinator, Result<T, String>), String> {
    let deadline = Instant::now() + RETRY_FOR;
    let mut last;
    loop {
        let attempt = Client::connect(bootstrap, TIMEOUT)
            .and_then(|mut c| c.find_coordinator(group))
            .and_then(|(id, address)| {
                let mut c = Client::connect(&address, TIMEOUT)
                    .map_err(|e| format!("COORDINATOR_NOT_AVAILABLE: coordinator {id}: {e}"))?;
                Ok((Coordinator { id, address }, op(&mut c)))
            });
        match attempt {
            Ok((_, Err(e))) if coordinator_moving(&e) => last = e,
            Ok(done) => return Ok(done),
            Err(e) if coordinator_moving(&e) => last = e,
            Err(e) => return Err(format!("finding the coordinator of group '{group}': {e}")),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "group '{group}': no coordinator answered within {RETRY_FOR:?} (last: {last})"
            ));
        }
        backoff();
    }
}

// ----- list -----

#[derive(Debug, PartialEq, Eq)]
struct ListedRow {
    group: String,
    protocol_type: String,
    state: String,
    coordinator: i32,
}

#[derive(Debug, Default)]
struct Listing {
    /// Sorted by group id; one row per group.
    rows: Vec<ListedRow>,
    /// Brokers that did not answer, or answered with only part of their groups.
    warnings: Vec<String>,
}

fn list(bootstrap: &str) -> Result<Listing, String> {
    let mut c = Routed::connect(bootstrap, TIMEOUT)?;
    let m = c.metadata(Some(Vec::new()))?;
    let mut brokers: Vec<(i32, String)> = m
        .brokers
        .iter()
        .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
        .collect();
    brokers.sort();
    let mut listing = Listing::default();
    let mut seen = BTreeMap::new();
    for (id, address) in brokers {
        let answer = Client::connect(&address, TIMEOUT).and_then(|mut c| c.list_groups());
        let (code, groups) = match answer {
            Ok(a) => a,
            Err(e) => {
                listing.warnings.push(format!(
                    "broker {id} ({address}) did not list its groups: {e}"
                ));
                continue;
            }
        };
        if let Err(e) = crate::client::check(code, None) {
            listing.warnings.push(format!(
                "broker {id} ({address}) listed only some of its groups: {e}"
            ));
        }
        for g in groups {
            // During a coordinator move two brokers may both list a group; the first wins.
            seen.entry(g.group_id.clone()).or_insert(ListedRow {
                group: g.group_id,
                protocol_type: g.protocol_type,
                state: g.group_state,
                coordinator: id,
            });
        }
    }
    listing.rows = seen.into_values().collect();
    Ok(listing)
}

impl Listing {
    fn to_text(&self) -> String {
        if self.rows.is_empty() {
            return "no groups\n".into();
        }
        let mut rows = vec![["GROUP", "TYPE", "STATE", "COORDINATOR"]
            .map(String::from)
            .to_vec()];
        for r in &self.rows {
            rows.push(vec![
                r.group.clone(),
                dash(&r.protocol_type),
                dash(&r.state),
                r.coordinator.to_string(),
            ]);
        }
        table(&rows)
    }

    fn to_json(&self) -> String {
        let groups: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "group": r.group,
                    "protocol_type": r.protocol_type,
                    "state": r.state,
                    "coordinator": r.coordinator,
                })
            })
            .collect();
        format!(
            "{}\n",
            json!({ "groups": groups, "warnings": self.warnings })
        )
    }
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

// ----- describe -----

/// A member's assignment in Kafka's ConsumerProtocol format: topic -> partitions.
type Assignment = BTreeMap<String, Vec<i32>>;

/// Decodes a ConsumerProtocolAssignment (version, then [topic, [partition]], then user data,
/// the same in every version so far). `None` for bytes that are not one.
fn decode_assignment(bytes: &[u8]) -> Option<Assignment> {
    let mut r = Reader::new(bytes);
    if r.i16().ok()? < 0 {
        return None;
    }
    let mut out = Assignment::new();
    let topics = r.array_len(false, 6).ok()?.unwrap_or(0);
    for _ in 0..topics {
        let topic = r.string(false).ok()?;
        let count = r.array_len(false, 4).ok()?.unwrap_or(0);
        let partitions = out.entry(topic).or_default();
        for _ in 0..count {
            partitions.push(r.i32().ok()?);
        }
        partitions.sort_unstable();
    }
    Some(out)
}

#[derive(Debug, PartialEq, Eq)]
struct MemberRow {
    member_id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// Decoded when the protocol type is "consumer" and the group is Stable; `None` otherwise
    /// (then `assignment_bytes` says how much the broker holds).
    assignment: Option<Assignment>,
    assignment_bytes: usize,
}

#[derive(Debug, PartialEq, Eq)]
struct OffsetRow {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    log_end: Option<i64>,
    /// Index into the members of the one assigned this partition.
    member: Option<usize>,
}

impl OffsetRow {
    fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.committed?).max(0))
    }
}

#[derive(Debug, PartialEq, Eq)]
struct GroupDescription {
    group: String,
    coordinator: Coordinator,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<MemberRow>,
    /// Sorted by topic, then partition: every partition with a committed offset or a member.
    offsets: Vec<OffsetRow>,
}

fn describe(bootstrap: &str, group: &str) -> Result<GroupDescription, String> {
    let (coordinator, answer) = on_coordinator(bootstrap, group, |c| {
        let described = c.describe_group(group)?;
        let committed = c.committed_offsets(group)?;
        Ok((described, committed))
    })?;
    let (described, committed) = answer.map_err(|e| format!("describing group '{group}': {e}"))?;
    if described.group_state == "Dead" && committed.is_empty() {
        return Err(format!("group '{group}' does not exist"));
    }
    let mut d = GroupDescription::new(group, coordinator, described, &committed);
    let mut routed = Routed::connect(bootstrap, TIMEOUT)?;
    for row in &mut d.offsets {
        // A partition whose leader cannot be reached shows "-", like a lag not known yet.
        row.log_end = routed
            .on_leader(&row.topic, row.partition, |l| {
                l.list_offset(&row.topic, row.partition, -1)
            })
            .ok();
    }
    Ok(d)
}

impl GroupDescription {
    fn new(
        group: &str,
        coordinator: Coordinator,
        g: DescribedGroup,
        committed: &[(String, i32, i64)],
    ) -> GroupDescription {
        let consumer = g.protocol_type == "consumer";
        let members: Vec<MemberRow> = g
            .members
            .into_iter()
            .map(|m| MemberRow {
                assignment: consumer
                    .then(|| decode_assignment(&m.member_assignment))
                    .flatten()
                    .filter(|_| !m.member_assignment.is_empty()),
                assignment_bytes: m.member_assignment.len(),
                member_id: m.member_id,
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                host: m.client_host,
            })
            .collect();
        let mut rows: BTreeMap<(String, i32), OffsetRow> = BTreeMap::new();
        for (topic, partition, offset) in committed {
            rows.insert(
                (topic.clone(), *partition),
                OffsetRow {
                    topic: topic.clone(),
                    partition: *partition,
                    committed: Some(*offset),
                    log_end: None,
                    member: None,
                },
            );
        }
        for (i, m) in members.iter().enumerate() {
            for (topic, partitions) in m.assignment.iter().flatten() {
                for &p in partitions {
                    rows.entry((topic.clone(), p))
                        .or_insert(OffsetRow {
                            topic: topic.clone(),
                            partition: p,
                            committed: None,
                            log_end: None,
                            member: None,
                        })
                        .member = Some(i);
                }
            }
        }
        GroupDescription {
            group: group.to_string(),
            coordinator,
            state: g.group_state,
            protocol_type: g.protocol_type,
            protocol: g.protocol_data,
            members,
            offsets: rows.into_values().collect(),
        }
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "group:        {}", self.group);
        let _ = writeln!(
            out,
            "coordinator:  {} ({})",
            self.coordinator.id, self.coordinator.address
        );
        let _ = writeln!(out, "state:        {}", self.state);
        let protocol = match (self.protocol_type.as_str(), self.protocol.as_str()) {
            ("", _) => "-".to_string(),
            (t, "") => t.to_string(),
            (t, p) => format!("{t} ({p})"),
        };
        let _ = writeln!(out, "protocol:     {protocol}");
        let _ = writeln!(out, "members:      {}", self.members.len());
        if !self.members.is_empty() {
            out.push('\n');
            let mut rows = vec![["MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNMENT"]
                .map(String::from)
                .to_vec()];
            for m in &self.members {
                rows.push(vec![
                    m.member_id.clone(),
                    m.instance_id.as_deref().map_or("-".into(), dash),
                    dash(&m.client_id),
                    dash(&m.host),
                    assignment_text(m),
                ]);
            }
            out.push_str(&table(&rows));
        }
        out.push('\n');
        if self.offsets.is_empty() {
            out.push_str("no committed offsets and no assigned partitions\n");
            return out;
        }
        let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let mut rows = vec![[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "MEMBER",
            "HOST",
            "CLIENT-ID",
        ]
        .map(String::from)
        .to_vec()];
        for r in &self.offsets {
            let m = r.member.map(|i| &self.members[i]);
            rows.push(vec![
                r.topic.clone(),
                r.partition.to_string(),
                opt(r.committed),
                opt(r.log_end),
                opt(r.lag()),
                m.map_or("-".into(), |m| m.member_id.clone()),
                m.map_or("-".into(), |m| dash(&m.host)),
                m.map_or("-".into(), |m| dash(&m.client_id)),
            ]);
        }
        out.push_str(&table(&rows));
        out
    }

    fn to_json(&self) -> String {
        let members: Vec<serde_json::Value> = self
            .members
            .iter()
            .map(|m| {
                let assignment = m.assignment.as_ref().map(|a| {
                    a.iter()
                        .map(|(t, ps)| json!({ "topic": t, "partitions": ps }))
                        .collect::<Vec<_>>()
                });
                json!({
                    "member_id": m.member_id,
                    "instance_id": m.instance_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "assignment": assignment,
                    "assignment_bytes": m.assignment_bytes,
                })
            })
            .collect();
        let offsets: Vec<serde_json::Value> = self
            .offsets
            .iter()
            .map(|r| {
                json!({
                    "topic": r.topic,
                    "partition": r.partition,
                    "committed": r.committed,
                    "log_end": r.log_end,
                    "lag": r.lag(),
                    "member_id": r.member.map(|i| &self.members[i].member_id),
                })
            })
            .collect();
        let out = json!({
            "group": self.group,
            "coordinator": { "id": self.coordinator.id, "address": self.coordinator.address },
            "state": self.state,
            "protocol_type": self.protocol_type,
            "protocol": self.protocol,
            "members": members,
            "offsets": offsets,
        });
        format!("{out}\n")
    }
}

/// "orders:0,1 payments:2", "-" for none, or the size of an assignment not decoded.
fn assignment_text(m: &MemberRow) -> String {
    match &m.assignment {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|(t, ps)| {
                let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
                format!("{t}:{}", ps.join(","))
            })
            .collect::<Vec<_>>()
            .join(" "),
        Some(_) => "-".into(),
        None if m.assignment_bytes > 0 => format!("({} bytes)", m.assignment_bytes),
        None => "-".into(),
    }
}

// ----- reset-offsets -----

fn reset_offsets(a: ResetArgs) -> Result<(), String> {
    check_group_id(&a.group)?;
    if a.to_offset.is_some_and(|o| o < 0) {
        return Err("--to-offset must not be negative".into());
    }
    let group = a.group.as_str();
    // Kafka's tool checks first too: a clear message beats the broker's UNKNOWN_MEMBER_ID.
    let (_, described) = on_coordinator(&a.conn.bootstrap, group, |c| {
        let d = c.describe_group(group)?;
        Ok((d.group_state, d.members.len(), c.committed_offsets(group)?))
    })?;
    let (state, members, committed) =
        described.map_err(|e| format!("describing group '{group}': {e}"))?;
    if !matches!(state.as_str(), "Empty" | "Dead") {
        return Err(has_members(group, &state, members));
    }
    let mut routed = Routed::connect(&a.conn.bootstrap, TIMEOUT)?;
    let partitions = topic_partitions(&mut routed, &a.topic, a.partition)?;
    let mut plan = Vec::new();
    for p in partitions {
        let topic = a.topic.as_str();
        let mut offset = |ts| routed.on_leader(topic, p, |l| l.list_offset(topic, p, ts));
        let (start, end) = (offset(-2)?, offset(-1)?);
        let new = match a.to_offset {
            Some(o) => o.clamp(start, end),
            None if a.to_earliest => start,
            None => end,
        };
        let old = committed
            .iter()
            .find(|(t, q, _)| t == topic && *q == p)
            .map(|c| c.2);
        plan.push((p, old, new));
    }
    if !a.dry_run {
        let offsets: Vec<(i32, i64)> = plan.iter().map(|&(p, _, new)| (p, new)).collect();
        let (_, result) = on_coordinator(&a.conn.bootstrap, group, |c| {
            c.commit_offsets(group, &a.topic, &offsets)
        })?;
        result.map_err(|e| match code_name(&e) {
            "UNKNOWN_MEMBER_ID" | "ILLEGAL_GENERATION" | "REBALANCE_IN_PROGRESS" => format!(
                "the broker refused the reset: group '{group}' has members now ({e}); stop its \
                 consumers first"
            ),
            _ => format!("committing offsets of group '{group}': {e}"),
        })?;
    }
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let mut rows = vec![["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"]
        .map(String::from)
        .to_vec()];
    for (p, old, new) in plan {
        rows.push(vec![
            a.topic.clone(),
            p.to_string(),
            opt(old),
            new.to_string(),
        ]);
    }
    print!("{}", table(&rows));
    if a.dry_run {
        println!("dry run: nothing committed");
    }
    Ok(())
}

fn has_members(group: &str, state: &str, members: usize) -> String {
    format!(
        "group '{group}' is {state} with {members} member{}: offsets can only be reset while \
         it has none (stop its consumers, or wait for their sessions to time out)",
        if members == 1 { "" } else { "s" }
    )
}

/// The partitions of `topic` (or just `only`, checked to exist).
fn topic_partitions(c: &mut Routed, topic: &str, only: Option<i32>) -> Result<Vec<i32>, String> {
    let m = c.metadata(Some(vec![topic.to_string()]))?;
    let t = m.topics.first().ok_or("empty metadata response")?;
    crate::client::check(t.error_code, Some(&format!("topic '{topic}'")))?;
    let all: BTreeSet<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
    match only {
        Some(p) if !all.contains(&p) => Err(format!(
            "topic '{topic}' has {} partitions; partition {p} does not exist",
            all.len()
        )),
        Some(p) => Ok(vec![p]),
        None => Ok(all.into_iter().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sluice_core::protocol::messages::describe_groups::DescribedGroupMember;
    use sluice_core::protocol::Writer;

    /// A ConsumerProtocolAssignment as the Java client and librdkafka write it.
    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Bytes {
        let mut w = Writer::new();
        w.i16(version);
        w.i32(topics.len() as i32);
        for (t, ps) in topics {
            w.i16(t.len() as i16);
            w.raw(t.as_bytes());
            w.i32(ps.len() as i32);
            for p in *ps {
                w.i32(*p);
            }
        }
        match user_data {
            Some(d) => {
                w.i32(d.len() as i32);
                w.raw(d);
            }
            None => w.i32(-1),
        }
        Bytes::from(w.into_inner())
    }

    #[test]
    fn consumer_protocol_assignments_decode_and_garbage_does_not() {
        let a = assignment(3, &[("orders", &[4, 1]), ("audit", &[0])], Some(b"x"));
        let decoded = decode_assignment(&a).expect("a valid assignment");
        assert_eq!(decoded["orders"], vec![1, 4]);
        assert_eq!(decoded["audit"], vec![0]);
        assert_eq!(
            decode_assignment(&assignment(0, &[], None)),
            Some(Assignment::new())
        );
        assert_eq!(decode_assignment(&[]), None);
        assert_eq!(decode_assignment(&a[..a.len() - 9]), None, "cut short");
        // A count far larger than the bytes left is refused, not allocated.
        assert_eq!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(decode_assignment(&[0xff, 0xff, 0, 0, 0, 0]), None);
    }

    fn stable_group() -> GroupDescription {
        let member = |id: &str, client: &str, a: Bytes| DescribedGroupMember {
            member_id: id.into(),
            group_instance_id: None,
            client_id: client.into(),
            client_host: "/127.0.0.1".into(),
            member_metadata: Bytes::new(),
            member_assignment: a,
        };
        let g = DescribedGroup {
            group_id: "billing".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_data: "range".into(),
            members: vec![
                member("m-1", "app", assignment(1, &[("orders", &[0, 1])], None)),
                member("m-2", "app", assignment(1, &[("orders", &[2])], None)),
            ],
            ..Default::default()
        };
        let committed = vec![
            ("orders".to_string(), 0, 10),
            ("orders".to_string(), 2, 7),
            ("old".to_string(), 0, 3),
        ];
        let coordinator = Coordinator {
            id: 2,
            address: "127.0.0.1:9092".into(),
        };
        let mut d = GroupDescription::new("billing", coordinator, g, &committed);
        for (row, end) in d.offsets.iter_mut().zip([Some(3), Some(12), Some(5), None]) {
            row.log_end = end;
        }
        d
    }

    #[test]
    fn describe_shows_members_assignments_and_lag_per_partition() {
        let expected = "\
group:        billing
coordinator:  2 (127.0.0.1:9092)
state:        Stable
protocol:     consumer (range)
members:      2

MEMBER  INSTANCE  CLIENT-ID  HOST        ASSIGNMENT
m-1     -         app        /127.0.0.1  orders:0,1
m-2     -         app        /127.0.0.1  orders:2

TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  MEMBER  HOST        CLIENT-ID
old     0          3               3               0    -       -           -
orders  0          10              12              2    m-1     /127.0.0.1  app
orders  1          -               5               -    m-1     /127.0.0.1  app
orders  2          7               -               -    m-2     /127.0.0.1  app
";
        assert_eq!(stable_group().to_text(), expected);
    }

    #[test]
    fn describe_json_has_every_field() {
        let json = stable_group().to_json();
        assert!(
            json.starts_with(
                "{\"group\":\"billing\",\"coordinator\":{\"id\":2,\"address\":\"127.0.0.1:9092\"},\
                 \"state\":\"Stable\",\"protocol_type\":\"consumer\",\"protocol\":\"range\","
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"member_id\":\"m-1\",\"instance_id\":null,\"client_id\":\"app\",\
                 \"host\":\"/127.0.0.1\",\"assignment\":[{\"topic\":\"orders\",\
                 \"partitions\":[0,1]}],\"assignment_bytes\":"
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"topic\":\"orders\",\"partition\":0,\"committed\":10,\"log_end\":12,\
                 \"lag\":2,\"member_id\":\"m-1\"}"
            ),
            "{json}"
        );
        assert!(
            json.contains(
                "{\"topic\":\"orders\",\"partition\":1,\"committed\":null,\"log_end\":5,\
                 \"lag\":null,\"member_id\":\"m-1\"}"
            ),
            "{json}"
        );
    }

    #[test]
    fn other_protocol_types_keep_their_assignment_opaque() {
        let g = DescribedGroup {
            group_id: "connect".into(),
            group_state: "Stable".into(),
            protocol_type: "connect".into(),
            members: vec![DescribedGroupMember {
                member_id: "w-1".into(),
                member_assignment: Bytes::from_static(b"\x00\x01opaque"),
                ..Default::default()
            }],
            ..Default::default()
        };
        let coordinator = Coordinator {
            id: 1,
            address: "h:1".into(),
        };
        let d = GroupDescription::new("connect", coordinator, g, &[]);
        assert_eq!(d.members[0].assignment, None);
        assert_eq!(assignment_text(&d.members[0]), "(8 bytes)");
        assert!(d.offsets.is_empty());
        assert!(d
            .to_text()
            .ends_with("no committed offsets and no assigned partitions\n"));
    }

    #[test]
    fn list_merges_into_one_row_per_group() {
        let listing = Listing {
            rows: vec![ListedRow {
                group: "billing".into(),
                protocol_type: "consumer".into(),
                state: "Stable".into(),
                coordinator: 3,
            }],
            warnings: vec!["broker 2 (h:2) did not list its groups: x".into()],
        };
        assert_eq!(
            listing.to_text(),
            "GROUP    TYPE      STATE   COORDINATOR\nbilling  consumer  Stable  3\n"
        );
        assert_eq!(
            listing.to_json(),
            "{\"groups\":[{\"group\":\"billing\",\"protocol_type\":\"consumer\",\
             \"state\":\"Stable\",\"coordinator\":3}],\
             \"warnings\":[\"broker 2 (h:2) did not list its groups: x\"]}\n"
        );
        assert_eq!(Listing::default().to_text(), "no groups\n");
    }

    #[test]
    fn error_names_are_read_from_check_messages() {
        assert_eq!(code_name("NOT_COORDINATOR (16)"), "NOT_COORDINATOR");
        assert_eq!(code_name("NON_EMPTY_GROUP (68): x"), "NON_EMPTY_GROUP");
        assert!(coordinator_moving("COORDINATOR_LOAD_IN_PROGRESS (14)"));
        assert!(!coordinator_moving("GROUP_ID_NOT_FOUND (69)"));
        assert!(has_members("g", "Stable", 1).contains("Stable with 1 member:"));
    }
}
