#!/usr/bin/env python3
"""Consumer-group workloads for Sluice's real-process group tests (tests/it/groups_live.rs).

Each mode is one process, so the test harness can SIGKILL a consumer like a crashed
application. Everything a mode learns goes to its --out file as tab-separated lines, written
and flushed before the step that depends on them (a record is written before its offset is
committed), so a SIGKILL loses nothing the harness relies on:

    R <partition> <offset> <value>    a record this process consumed (or acknowledged, produce)
    A <partition>,<partition>,...     partitions assigned to this consumer (empty: none)
    a+ / a- <partition>,...           partitions added or revoked (cooperative-sticky)
    C <partition> <offset>            an offset commit the coordinator acknowledged

Modes:
  produce      idempotent acks=all confluent-kafka producer: records "<seq>" round-robin over
               the partitions, paced by --rate, until --count records are acknowledged or the
               --stop file appears; then flushes and writes every acknowledged record.
  consume      confluent-kafka group member (enable.auto.commit=false): poll a batch, write its
               records, commit synchronously; until the --stop file appears or --expect
               distinct records were seen; then commits and closes (leaving the group).
               --assignor picks range (default), roundrobin or cooperative-sticky.
  kp-consume   kafka-python group member: consume until --expect records, commit exactly the
               offsets after what was written, close.

Runnable by hand, for example:
    group_check.py consume --bootstrap 127.0.0.1:9092 --topic t --group g --out c1.txt \
        --stop stop --timeout 60
Every client call has a timeout and every mode a deadline (--timeout). Exit status 0 on
success, 1 on a client error or a missed deadline (the message says which), 2 on usage errors.
"""

import argparse
import os
import sys
import time


class Failure(Exception):
    """A client call failed or the deadline passed; the message says which."""


def log(msg):
    print(f"[group_check] {time.monotonic():.3f} {msg}", flush=True)


class Out:
    """The --out file, line-buffered and flushed after every group of lines."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, *fields):
        self.f.write("\t".join(str(x) for x in fields) + "\n")

    def flush(self):
        self.f.flush()


def on_librdkafka_error(err):
    print(f"[librdkafka error] {err}", file=sys.stderr, flush=True)


def produce(args, deadline):
    from confluent_kafka import Producer

    out = Out(args.out)
    p = Producer(
        {
            "bootstrap.servers": args.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": int(max(5, args.timeout - 5) * 1000),
            "reconnect.backoff.max.ms": 500,
            "error_cb": on_librdkafka_error,
        }
    )
    acked, failed = [], []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value().decode()))
        else:
            failed.append(str(err))

    seq = 0
    interval = 1.0 / args.rate
    next_send = time.monotonic()
    while time.monotonic() < deadline:
        if os.path.exists(args.stop) or (args.count and seq >= args.count):
            break
        now = time.monotonic()
        if now >= next_send:
            p.produce(args.topic, value=str(seq).encode(), partition=seq % args.partitions,
                      on_delivery=on_delivery)
            seq += 1
            next_send += interval
        # Serves delivery reports while waiting for the next send time.
        p.poll(max(0.0, min(0.05, next_send - time.monotonic())))
    left = p.flush(max(1.0, deadline - time.monotonic()))
    for rec in sorted(acked):
        out.write("R", *rec)
    out.flush()
    log(f"produce: sent {seq}, acknowledged {len(acked)}, failed {len(failed)}, unresolved {left}"
        + (f", first failure: {failed[0]}" if failed else ""))
    if left:
        raise Failure(f"{left} records still unresolved at the deadline")
    if args.count and len(acked) != args.count:
        raise Failure(f"only {len(acked)} of {args.count} records were acknowledged: {failed[:3]}")


def consume(args, deadline):
    from confluent_kafka import Consumer, KafkaException

    out = Out(args.out)

    # Eager assignors hand out (and revoke) the whole assignment: "A" lines. Cooperative ones
    # hand out and revoke increments, logged as "a+" and "a-" lines.
    cooperative = args.assignor == "cooperative-sticky"

    def on_assign(consumer, partitions):
        ids = ",".join(str(tp.partition) for tp in partitions)
        out.write("a+" if cooperative else "A", ids)
        out.flush()
        log(f"assigned {[tp.partition for tp in partitions]}")

    def on_revoke(consumer, partitions):
        # Commit what was written first, so the next owner starts right after it (the commit
        # may fail if the generation is gone).
        commit(consumer, "on revoke")
        if cooperative:
            out.write("a-", ",".join(str(tp.partition) for tp in partitions))
        else:
            out.write("A", "")
        out.flush()

    def commit(consumer, why):
        try:
            done = consumer.commit(asynchronous=False)
        except KafkaException as e:
            log(f"commit ({why}) failed: {e}")
            return
        for tp in done or []:
            if tp.error is None and tp.offset >= 0:
                out.write("C", tp.partition, tp.offset)
        out.flush()

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": args.assignor,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": min(3000, args.session_timeout_ms // 3),
        "reconnect.backoff.max.ms": 500,
        "error_cb": on_librdkafka_error,
    }
    if args.debug:
        conf["debug"] = args.debug
    c = Consumer(conf)
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    seen = set()
    while True:
        if time.monotonic() >= deadline:
            raise Failure(f"deadline passed with {len(seen)} distinct records consumed")
        if os.path.exists(args.stop) or (args.expect and len(seen) >= args.expect):
            break
        msgs = c.consume(num_messages=500, timeout=0.2)
        wrote = False
        for m in msgs:
            if m.error() is not None:
                log(f"consume error: {m.error()}")
                continue
            out.write("R", m.partition(), m.offset(), m.value().decode())
            seen.add((m.partition(), m.offset()))
            wrote = True
        if wrote:
            # Written (to the page cache, which a SIGKILL does not lose) before committed.
            out.flush()
            commit(c, "after a batch")
    commit(c, "at the end")
    c.close()
    log(f"consume: {len(seen)} distinct records")


def kp_consume(args, deadline):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    out = Out(args.out)
    c = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=min(3000, args.session_timeout_ms // 3),
        request_timeout_ms=30000,
    )
    nxt = {}
    count = 0
    while count < args.expect:
        if time.monotonic() >= deadline:
            raise Failure(f"deadline passed with {count} of {args.expect} records consumed")
        batches = c.poll(timeout_ms=200, max_records=args.expect - count)
        for tp, msgs in batches.items():
            for m in msgs:
                out.write("R", tp.partition, m.offset, m.value.decode())
                nxt[tp.partition] = m.offset + 1
                count += 1
        out.flush()
    offsets = {TopicPartition(args.topic, p): OffsetAndMetadata(o, "", -1) for p, o in nxt.items()}
    c.commit(offsets)
    for p, o in sorted(nxt.items()):
        out.write("C", p, o)
    out.flush()
    c.close()
    log(f"kp-consume: {count} records, committed {sorted(nxt.items())}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["produce", "consume", "kp-consume"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, required=True, help="deadline in seconds")
    ap.add_argument("--stop", default="", help="stop when this file exists")
    ap.add_argument("--group", default="")
    ap.add_argument("--client-id", default="group-check")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--expect", type=int, default=0, help="stop after this many records")
    ap.add_argument("--count", type=int, default=0, help="produce: records (0: until --stop)")
    ap.add_argument("--partitions", type=int, default=1, help="produce: round-robin over these")
    ap.add_argument("--rate", type=float, default=200.0, help="produce: records per second")
    ap.add_argument("--assignor", default="range", help="consume: partition.assignment.strategy")
    ap.add_argument("--debug", default="", help="librdkafka debug contexts, e.g. cgrp")
    args = ap.parse_args()
    if args.mode != "produce" and not args.group:
        ap.error("--group is required to consume")
    if args.mode == "kp-consume" and args.expect <= 0:
        ap.error("kp-consume needs --expect")
    deadline = time.monotonic() + args.timeout
    try:
        {"produce": produce, "consume": consume, "kp-consume": kp_consume}[args.mode](args, deadline)
    except Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
