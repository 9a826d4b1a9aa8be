#!/usr/bin/env python3
"""Drives a Kafka-compatible broker with a real Python client and checks what it acknowledged.

Used by Sluice's real-process tests (tests/it/python_clients.rs); runnable by hand too:

    client_check.py --client confluent --bootstrap 127.0.0.1:9092 --phase produce --state s.jsonl
    # ... SIGKILL and restart the broker ...
    client_check.py --client confluent --bootstrap 127.0.0.1:9092 --phase verify --state s.jsonl

Phases:
  produce  create a topic (CreateTopics), produce keyed and unkeyed records with headers and
           explicit timestamps in several compressed batches through idempotent acks=all
           producers (one producer per codec), write every acknowledged record to the state file
           (JSON lines), check that each partition's offsets are dense from 0 in produce order,
           read everything back with manual assignment and compare, and check ListOffsets
           (earliest, latest, by timestamp).
  verify   after a crash and restart: every acknowledged record is still at its offset with the
           same key, value, headers and timestamp, nothing else is there, ListOffsets agrees; then
           append more records and check their offsets continue the log densely.

Only manual partition assignment is used (no consumer groups, no offset commits). Every client
call has a timeout and the whole run has a deadline (--timeout). Exit status: 0 when every check
passed, 1 on a mismatch or a client error (with a message saying what), 2 on usage errors.
"""

import argparse
import json
import os
import sys
import time
import uuid

PAD = "sluice-python-client-check " * 8  # compressible payload, so codecs have work to do


class Failure(Exception):
    """A check failed or a client call failed; the message says which."""


# Partition errors a restarting broker gives before it leads its partitions again.
RETRIABLE_LIST_OFFSETS = (6, 5)  # NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE


class Deadline:
    """The run's time budget; every client call takes its timeout from here."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self, cap=15.0):
        left = self.end - time.monotonic()
        if left <= 0:
            raise Failure("the run's deadline passed")
        return min(left, cap)

    def expired(self):
        return time.monotonic() >= self.end


def log(msg):
    print(f"[client_check] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# The workload: what to send, and the record form everything is compared in.
# --------------------------------------------------------------------------------------------


def make_plan(run_id, first_seq, keyed, unkeyed, partitions, base_ts):
    """Records in send order. Keyed ones go through the client's partitioner; unkeyed ones name
    their partition round-robin so that every partition surely gets records."""
    plan = []
    total = keyed + unkeyed
    k = u = 0
    for i in range(total):
        seq = first_seq + i
        # Interleave: keyed and unkeyed spread evenly over the send order.
        take_keyed = k < keyed and (u >= unkeyed or k * unkeyed <= u * keyed)
        value = json.dumps({"run": run_id, "seq": seq, "id": f"{run_id}-{seq}", "pad": PAD})
        rec = {"seq": seq, "value": value, "timestamp": base_ts + seq}
        if take_keyed:
            rec["key"] = f"key-{k % 17}"
            rec["partition"] = None
            rec["headers"] = [["seq", str(seq)], ["kind", "keyed"]]
            k += 1
        else:
            rec["key"] = None
            rec["partition"] = u % partitions
            rec["headers"] = []
            u += 1
        plan.append(rec)
    return plan


def chunks(plan, codecs, per_chunk):
    """Splits the plan into consecutive chunks, each with its codec (cycling through codecs)."""
    out = []
    for start in range(0, len(plan), per_chunk):
        out.append((codecs[len(out) % len(codecs)], plan[start : start + per_chunk]))
    return out


def acked_record(topic, partition, offset, rec):
    return {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "key": rec["key"],
        "value": rec["value"],
        "headers": rec["headers"],
        "timestamp": rec["timestamp"],
        "seq": rec["seq"],
    }


def shown(r):
    """A record for a failure message, without the long padding."""
    return comparable(r)[:2] + (r["value"].replace(PAD, "<pad>"),) + comparable(r)[3:]


def comparable(r):
    return (r["offset"], r["key"], r["value"], [list(h) for h in r["headers"]], r["timestamp"])


def decode(b):
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return b.decode("utf-8")


# --------------------------------------------------------------------------------------------
# Client adapters: the same operations over confluent-kafka and kafka-python.
# --------------------------------------------------------------------------------------------


class Confluent:
    """confluent-kafka (librdkafka)."""

    name = "confluent"
    codecs = ["gzip", "snappy", "lz4", "zstd"]

    def __init__(self, bootstrap, deadline, debug):
        import confluent_kafka
        from confluent_kafka import admin

        self.ck = confluent_kafka
        self.admin_mod = admin
        self.bootstrap = bootstrap
        self.deadline = deadline
        self.debug = debug
        self.client_log = []
        self.admin = admin.AdminClient(self.conf({"client.id": "client-check-admin"}))
        log(f"confluent-kafka {confluent_kafka.version()}, librdkafka {confluent_kafka.libversion()[0]}")

    def conf(self, extra):
        c = {
            "bootstrap.servers": self.bootstrap,
            "socket.timeout.ms": 10000,
            "socket.connection.setup.timeout.ms": 10000,
            "reconnect.backoff.max.ms": 1000,
            "error_cb": self.on_error,
            "logger": self,
        }
        if self.debug:
            c["debug"] = self.debug
        c.update(extra)
        return c

    # librdkafka calls this as a logging.Logger stand-in (the "logger" config).
    def log(self, level, fmt, *args):
        line = fmt % args if args else fmt
        self.client_log.append(line)
        if self.debug or level <= 4:  # syslog levels: 4 = warning
            print(f"[librdkafka] {line}", file=sys.stderr, flush=True)

    def on_error(self, err):
        print(f"[librdkafka error] {err}", file=sys.stderr, flush=True)

    def create_topic(self, topic, partitions):
        nt = self.admin_mod.NewTopic(topic, num_partitions=partitions, replication_factor=1)
        t = self.deadline.left()
        futures = self.admin.create_topics([nt], operation_timeout=t, request_timeout=t)
        try:
            futures[topic].result(timeout=self.deadline.left())
        except Exception as e:  # noqa: BLE001 - any client error is a failure with its text
            raise Failure(f"CreateTopics({topic}, {partitions} partitions) failed: {e!r}")

    def topic_partitions(self, topic):
        """Partition ids with a leader, or None while the topic is not (yet) known."""
        md = self.admin.list_topics(topic=topic, timeout=self.deadline.left(5))
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return None
        return sorted(p.id for p in t.partitions.values() if p.error is None and p.leader >= 0)

    def produce(self, topic, plan_chunks):
        acked = []
        for codec, recs in plan_chunks:
            acked.extend(self.produce_chunk(topic, codec, recs))
        return acked

    def produce_chunk(self, topic, codec, recs):
        producer = self.ck.Producer(
            self.conf(
                {
                    "client.id": f"client-check-producer-{codec}",
                    "enable.idempotence": True,
                    "acks": "all",
                    "compression.type": codec,
                    "linger.ms": 20,
                    "batch.num.messages": 16,
                    "message.timeout.ms": 30000,
                    "request.timeout.ms": 10000,
                }
            )
        )
        results = [None] * len(recs)

        def on_delivery(i):
            def cb(err, msg):
                results[i] = (err, msg.partition(), msg.offset())

            return cb

        for i, rec in enumerate(recs):
            kwargs = {
                "value": rec["value"].encode(),
                "headers": [(k, v.encode()) for k, v in rec["headers"]],
                "timestamp": rec["timestamp"],
                "on_delivery": on_delivery(i),
            }
            if rec["key"] is not None:
                kwargs["key"] = rec["key"].encode()
            if rec["partition"] is not None:
                kwargs["partition"] = rec["partition"]
            producer.produce(topic, **kwargs)
            producer.poll(0)
        left = producer.flush(self.deadline.left(30))
        if left:
            raise Failure(f"{left} records ({codec}) still undelivered when flush timed out")
        out = []
        for i, rec in enumerate(recs):
            if results[i] is None:
                raise Failure(f"no delivery report for seq {rec['seq']} ({codec})")
            err, partition, offset = results[i]
            if err is not None:
                raise Failure(f"produce of seq {rec['seq']} ({codec}) failed: {err}")
            out.append(acked_record(topic, partition, offset, rec))
        for line in self.client_log:
            if "compression" in line.lower() and "not supported" in line.lower():
                log(f"NOTE: librdkafka downgraded the codec: {line}")
        return out

    def list_offsets(self, topic, queries):
        """queries: {partition: 'earliest' | 'latest' | timestamp_ms} -> {partition: offset}
        (-1 where no record has a timestamp at or after the one asked for)."""
        OffsetSpec = self.admin_mod.OffsetSpec
        req = {}
        for p, q in queries.items():
            if q == "earliest":
                spec = OffsetSpec.earliest()
            elif q == "latest":
                spec = OffsetSpec.latest()
            else:
                spec = OffsetSpec.for_timestamp(q)
            req[self.ck.TopicPartition(topic, p)] = spec
        # librdkafka's admin ListOffsets does not retry partition errors. A broker that has
        # just restarted answers NOT_LEADER_FOR_PARTITION until it leads its partitions again
        # (as Kafka does), so retriable errors are retried here, within the run's deadline.
        out = {}
        while req:
            futures = self.admin.list_offsets(req, request_timeout=self.deadline.left())
            retry = {}
            for tp, fut in futures.items():
                try:
                    out[tp.partition] = fut.result(timeout=self.deadline.left()).offset
                except self.ck.KafkaException as e:
                    err = e.args[0]
                    if not err.retriable() and err.code() not in RETRIABLE_LIST_OFFSETS:
                        raise Failure(f"ListOffsets {topic}/{tp.partition} {queries[tp.partition]} failed: {e!r}")
                    log(f"ListOffsets {topic}/{tp.partition}: {err.name()}, retrying")
                    retry[tp] = req[tp]
                except Exception as e:  # noqa: BLE001
                    raise Failure(f"ListOffsets {topic}/{tp.partition} {queries[tp.partition]} failed: {e!r}")
            req = retry
            if req:
                time.sleep(0.1)  # pacing between attempts, bounded by the run's deadline
                self.deadline.left()
        return out

    def consume(self, topic, partitions, end_offsets):
        """Every record of every partition from offset 0 up to end_offsets[p] (and anything
        beyond that the broker already has), by manual assignment."""
        consumer = self.ck.Consumer(
            self.conf(
                {
                    "client.id": "client-check-consumer",
                    "group.id": "client-check-unused",  # required by the client; never joined
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "error",
                    "fetch.wait.max.ms": 100,
                }
            )
        )
        try:
            consumer.assign([self.ck.TopicPartition(topic, p, 0) for p in partitions])
            got = {p: [] for p in partitions}
            at_eof = {}
            while not all(at_eof.get(p, -1) >= end_offsets[p] for p in partitions):
                if self.deadline.expired():
                    raise Failure(f"consume timed out: eof at {at_eof}, wanted {end_offsets}")
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error() is not None:
                    if msg.error().code() == self.ck.KafkaError._PARTITION_EOF:
                        at_eof[msg.partition()] = msg.offset()
                        continue
                    raise Failure(f"consume error on {topic}/{msg.partition()}: {msg.error()}")
                ts_type, ts = msg.timestamp()
                if ts_type != self.ck.TIMESTAMP_CREATE_TIME:
                    raise Failure(f"{topic}/{msg.partition()}@{msg.offset()}: timestamp type {ts_type}, want CreateTime")
                got[msg.partition()].append(
                    {
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "key": decode(msg.key()),
                        "value": decode(msg.value()),
                        "headers": [[k, decode(v)] for k, v in (msg.headers() or [])],
                        "timestamp": ts,
                    }
                )
            for p in partitions:
                low, high = consumer.get_watermark_offsets(
                    self.ck.TopicPartition(topic, p), timeout=self.deadline.left(), cached=False
                )
                if (low, high) != (0, end_offsets[p]):
                    raise Failure(f"{topic}/{p}: watermarks ({low}, {high}), want (0, {end_offsets[p]})")
            return got
        finally:
            consumer.close()


class KafkaPython:
    """kafka-python 3.x (pure Python; its producer is idempotent by default, which we keep)."""

    name = "kafka-python"

    def __init__(self, bootstrap, deadline, debug):
        import kafka
        from kafka import codec

        self.kafka = kafka
        self.bootstrap = bootstrap
        self.deadline = deadline
        if debug:
            import logging

            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        self.codecs = ["gzip"]
        for name, has in [("snappy", codec.has_snappy), ("lz4", codec.has_lz4), ("zstd", codec.has_zstd)]:
            if has():
                self.codecs.append(name)
            else:
                log(f"NOTE: kafka-python has no {name} codec installed; skipping it")
        self.admin = kafka.KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="client-check-admin", request_timeout_ms=10000
        )
        log(f"kafka-python {kafka.__version__}, codecs {self.codecs}")

    def create_topic(self, topic, partitions):
        try:
            self.admin.create_topics(
                {topic: {"num_partitions": partitions, "replication_factor": 1}},
                timeout_ms=int(self.deadline.left() * 1000),
            )
        except Exception as e:  # noqa: BLE001
            raise Failure(f"CreateTopics({topic}, {partitions} partitions) failed: {e!r}")

    def topic_partitions(self, topic):
        topics = self.admin.describe_topics([topic])
        for t in topics:
            if t["name"] == topic and t["error_code"] == 0:
                return sorted(
                    p["partition_index"] for p in t["partitions"] if p["error_code"] == 0 and p["leader_id"] >= 0
                )
        return None

    def produce(self, topic, plan_chunks):
        acked = []
        for codec, recs in plan_chunks:
            acked.extend(self.produce_chunk(topic, codec, recs))
        return acked

    def produce_chunk(self, topic, codec, recs):
        producer = self.kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap,
            client_id=f"client-check-producer-{codec}",
            compression_type=codec,
            linger_ms=20,
            batch_size=2048,
            request_timeout_ms=10000,
            max_block_ms=10000,
            delivery_timeout_ms=30000,
        )
        try:
            if not producer.config["enable_idempotence"]:
                raise Failure("kafka-python's producer is not idempotent here (it should be by default)")
            futures = []
            for rec in recs:
                futures.append(
                    producer.send(
                        topic,
                        key=None if rec["key"] is None else rec["key"].encode(),
                        value=rec["value"].encode(),
                        headers=[(k, v.encode()) for k, v in rec["headers"]],
                        partition=rec["partition"],
                        timestamp_ms=rec["timestamp"],
                    )
                )
            producer.flush(timeout=self.deadline.left(30))
            out = []
            for rec, fut in zip(recs, futures):
                try:
                    md = fut.get(timeout=self.deadline.left())
                except Exception as e:  # noqa: BLE001
                    raise Failure(f"produce of seq {rec['seq']} ({codec}) failed: {e!r}")
                out.append(acked_record(topic, md.partition, md.offset, rec))
            return out
        finally:
            producer.close(timeout=self.deadline.left(5))

    def consumer(self):
        return self.kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="client-check-consumer",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="none",
            request_timeout_ms=10000,
            fetch_max_wait_ms=100,
        )

    def list_offsets(self, topic, queries):
        TP = self.kafka.TopicPartition
        c = self.consumer()
        try:
            t_ms = int(self.deadline.left() * 1000)
            out = {}
            early = [TP(topic, p) for p, q in queries.items() if q == "earliest"]
            late = [TP(topic, p) for p, q in queries.items() if q == "latest"]
            times = {TP(topic, p): q for p, q in queries.items() if q not in ("earliest", "latest")}
            try:
                if early:
                    out.update({tp.partition: o for tp, o in c.beginning_offsets(early, timeout_ms=t_ms).items()})
                if late:
                    out.update({tp.partition: o for tp, o in c.end_offsets(late, timeout_ms=t_ms).items()})
                if times:
                    for tp, ot in c.offsets_for_times(times, timeout_ms=t_ms).items():
                        out[tp.partition] = -1 if ot is None else ot.offset
            except Exception as e:  # noqa: BLE001
                raise Failure(f"ListOffsets {topic} {queries} failed: {e!r}")
            return out
        finally:
            c.close()

    @staticmethod
    def record(m):
        if m.timestamp_type != 0:
            raise Failure(f"{m.topic}/{m.partition}@{m.offset}: timestamp type {m.timestamp_type}, want CreateTime")
        return {
            "partition": m.partition,
            "offset": m.offset,
            "key": decode(m.key),
            "value": decode(m.value),
            "headers": [[k, decode(v)] for k, v in (m.headers or [])],
            "timestamp": m.timestamp,
        }

    def consume(self, topic, partitions, end_offsets):
        TP = self.kafka.TopicPartition
        c = self.consumer()
        try:
            tps = [TP(topic, p) for p in partitions]
            c.assign(tps)
            for tp in tps:
                c.seek(tp, 0)
            got = {p: [] for p in partitions}
            while not all(c.position(tp, timeout_ms=5000) >= end_offsets[tp.partition] for tp in tps):
                if self.deadline.expired():
                    raise Failure(f"consume timed out: records read per partition {counts(got)}, wanted {end_offsets}")
                for tp, msgs in c.poll(timeout_ms=500).items():
                    for m in msgs:
                        got[tp.partition].append(self.record(m))
            # Records past the expected end would arrive in the same fetches or the next poll.
            for tp, msgs in c.poll(timeout_ms=200).items():
                got[tp.partition].extend(self.record(m) for m in msgs)
            return got
        finally:
            c.close()


# --------------------------------------------------------------------------------------------
# Checks, independent of the client.
# --------------------------------------------------------------------------------------------


def counts(got):
    return {p: len(v) for p, v in got.items()}


def check_dense_in_send_order(acked, partitions, start_offsets):
    """A single producer at a time: each partition's offsets, in send order, are start, start+1..."""
    nxt = dict(start_offsets)
    for r in acked:
        p = r["partition"]
        if p not in nxt:
            raise Failure(f"seq {r['seq']} acknowledged on unknown partition {p}")
        if r["offset"] != nxt[p]:
            raise Failure(
                f"partition {p}: seq {r['seq']} acknowledged at offset {r['offset']}, want {nxt[p]} "
                "(offsets must be dense and increase in produce order)"
            )
        nxt[p] += 1
    empty = [p for p in partitions if nxt[p] == start_offsets[p]]
    if empty:
        raise Failure(f"partitions {empty} got no records; the workload must cover every partition")
    return nxt


def check_keys_stick(acked):
    where = {}
    for r in acked:
        if r["key"] is None:
            continue
        if where.setdefault(r["key"], r["partition"]) != r["partition"]:
            raise Failure(f"key {r['key']} went to partitions {where[r['key']]} and {r['partition']}")


def by_partition(acked, partitions):
    out = {p: [] for p in partitions}
    for r in acked:
        out[r["partition"]].append(r)
    for p in partitions:
        out[p].sort(key=lambda r: r["offset"])
    return out


def check_consumed(expected, got):
    for p in sorted(expected):
        want, have = expected[p], got.get(p, [])
        for i, (w, h) in enumerate(zip(want, have)):
            if comparable(w) != comparable(h):
                raise Failure(
                    f"partition {p}, record #{i}: read {shown(h)},\n  acknowledged {shown(w)}"
                )
        if len(have) != len(want):
            extra = [shown(h) for h in have[len(want) :]][:3]
            raise Failure(
                f"partition {p}: read {len(have)} records, acknowledged {len(want)}"
                + (f"; unexpected extra records, first: {extra}" if extra else "")
            )


def check_offsets(client, topic, expected):
    check_earliest_latest(client, topic, expected)
    n = check_offsets_by_timestamp(client, topic, expected)
    log(f"ListOffsets ok: earliest 0, latest = record counts, {n} timestamp lookups")


def check_earliest_latest(client, topic, expected):
    partitions = sorted(expected)
    ends = {p: len(expected[p]) for p in partitions}
    earliest = client.list_offsets(topic, {p: "earliest" for p in partitions})
    latest = client.list_offsets(topic, {p: "latest" for p in partitions})
    for p in partitions:
        if earliest.get(p) != 0:
            raise Failure(f"{topic}/{p}: ListOffsets earliest = {earliest.get(p)}, want 0")
        if latest.get(p) != ends[p]:
            raise Failure(f"{topic}/{p}: ListOffsets latest = {latest.get(p)}, want {ends[p]}")


def check_offsets_by_timestamp(client, topic, expected):
    partitions = sorted(expected)
    # By timestamp: the first offset whose timestamp is at or after the one asked for. Timestamps
    # rise with the send order, so that is the offset of the record carrying it.
    probes = []
    for p in partitions:
        recs = expected[p]
        probes.append((p, 0, 0))
        for r in (recs[0], recs[len(recs) // 2], recs[-1]):
            probes.append((p, r["timestamp"], r["offset"]))
        mid = recs[len(recs) // 2]
        # One millisecond before a record: still that record, since no other record is between.
        prev = [r for r in recs if r["timestamp"] < mid["timestamp"]]
        if prev and prev[-1]["timestamp"] < mid["timestamp"] - 1:
            probes.append((p, mid["timestamp"] - 1, mid["offset"]))
        probes.append((p, recs[-1]["timestamp"] + 1, -1))
    # A request asks one timestamp per partition, so the probes go in rounds.
    per_partition = {}
    for p, ts, want in probes:
        per_partition.setdefault(p, []).append((ts, want))
    for i in range(max(len(v) for v in per_partition.values())):
        batch = {p: v[i] for p, v in per_partition.items() if i < len(v)}
        res = client.list_offsets(topic, {p: ts for p, (ts, _) in batch.items()})
        for p, (ts, want) in batch.items():
            if res.get(p) != want:
                raise Failure(f"{topic}/{p}: ListOffsets by timestamp {ts} = {res.get(p)}, want {want}")
    return len(probes)


def wait_topic(client, topic, partitions, deadline):
    want = list(range(partitions))
    seen = None
    # A topic that is not there within 20 s is not coming: fail fast rather than at the deadline.
    until = time.monotonic() + 20
    while not deadline.expired() and time.monotonic() < until:
        seen = client.topic_partitions(topic)
        if seen == want:
            return
        time.sleep(0.2)
    raise Failure(f"topic {topic}: metadata shows partitions {seen}, want {want} with leaders")


# --------------------------------------------------------------------------------------------
# Phases.
# --------------------------------------------------------------------------------------------


def phase_produce(client, args, deadline):
    topic = args.topic or f"client-check-{client.name}-{uuid.uuid4().hex[:8]}"
    run_id = uuid.uuid4().hex[:12]
    partitions = list(range(args.partitions))
    client.create_topic(topic, args.partitions)
    wait_topic(client, topic, args.partitions, deadline)
    log(f"created {topic} with {args.partitions} partitions")

    base_ts = int(time.time() * 1000) - 10 * 60 * 1000
    plan = make_plan(run_id, 0, args.keyed, args.unkeyed, args.partitions, base_ts)
    plan_chunks = chunks(plan, client.codecs, args.per_batch)
    acked = client.produce(topic, plan_chunks)
    log(f"{len(acked)} records acknowledged, codecs {[c for c, _ in plan_chunks]}")

    with open(args.state, "w") as f:
        meta = {"topic": topic, "partitions": args.partitions, "run": run_id, "client": client.name,
                "base_ts": base_ts, "next_seq": len(plan)}
        f.write(json.dumps({"meta": meta}) + "\n")
        for r in acked:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())

    if len(acked) != len(plan):
        raise Failure(f"{len(acked)} acknowledged, {len(plan)} sent")
    ends = check_dense_in_send_order(acked, partitions, {p: 0 for p in partitions})
    check_keys_stick(acked)
    expected = by_partition(acked, partitions)
    got = client.consume(topic, partitions, ends)
    check_consumed(expected, got)
    log(f"read back all {len(acked)} records in order: per partition {ends}")
    check_offsets(client, topic, expected)


def phase_verify(client, args, deadline):
    with open(args.state) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    if not lines or "meta" not in lines[0]:
        raise Failure(f"{args.state}: no meta line; did the produce phase run?")
    meta = lines[0]["meta"]
    acked = lines[1:]
    topic, nparts = meta["topic"], meta["partitions"]
    partitions = list(range(nparts))
    wait_topic(client, topic, nparts, deadline)
    expected = by_partition(acked, partitions)
    ends = {p: len(expected[p]) for p in partitions}
    for p in partitions:
        offs = [r["offset"] for r in expected[p]]
        if offs != list(range(len(offs))):
            raise Failure(f"state file: partition {p} offsets are not 0..{len(offs)}")
    check_offsets(client, topic, expected)
    got = client.consume(topic, partitions, ends)
    check_consumed(expected, got)
    log(f"after restart: all {len(acked)} acknowledged records present, nothing else: {ends}")

    # The log goes on where it stopped: a new producer's records land right after the old ones.
    more = make_plan(meta["run"], meta["next_seq"], args.keyed // 4, args.unkeyed // 4, nparts, meta["base_ts"])
    new_acked = client.produce(topic, chunks(more, client.codecs, args.per_batch))
    new_ends = check_dense_in_send_order(new_acked, partitions, ends)
    all_expected = by_partition(acked + new_acked, partitions)
    got = client.consume(topic, partitions, new_ends)
    check_consumed(all_expected, got)
    log(f"appended {len(new_acked)} more after restart; offsets continue densely: {new_ends}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", required=True, choices=["confluent", "kafka-python"])
    ap.add_argument("--bootstrap", required=True, help="host:port")
    ap.add_argument("--phase", required=True, choices=["produce", "verify"])
    ap.add_argument("--state", required=True, help="JSON-lines file of acknowledged records")
    ap.add_argument("--topic", help="topic name (default: generated)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--keyed", type=int, default=240)
    ap.add_argument("--unkeyed", type=int, default=120)
    ap.add_argument("--per-batch", type=int, default=45, help="records per producer (one codec each)")
    ap.add_argument("--timeout", type=float, default=60.0, help="deadline for the whole run, seconds")
    ap.add_argument("--debug", default="", help="client debug: librdkafka contexts, or any value for kafka-python")
    args = ap.parse_args()

    deadline = Deadline(args.timeout)
    started = time.monotonic()
    try:
        cls = Confluent if args.client == "confluent" else KafkaPython
        client = cls(args.bootstrap, deadline, args.debug)
        if args.phase == "produce":
            phase_produce(client, args, deadline)
        else:
            phase_verify(client, args, deadline)
    except Failure as e:
        print(f"FAIL [{args.client} {args.phase}]: {e}", flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - a client exception is a failure, reported plainly
        import traceback

        traceback.print_exc()
        print(f"FAIL [{args.client} {args.phase}]: unexpected client error: {e!r}", flush=True)
        return 1
    log(f"PASS [{args.client} {args.phase}] in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
