#!/usr/bin/env python3
"""Kafka clients for Sluice's network-namespace fault tests (tests/it/netns_faults.rs).

The harness runs each mode as its own process inside the clients' network namespace
(`ip netns exec NS python netns_clients.py MODE ...`), while it cuts links and stops brokers.
Everything a mode observes goes to its --out file as tab-separated lines, flushed as it happens,
so the harness can follow progress while the process runs and check the whole history after
it ends. Times are wall-clock milliseconds (time.time()), comparable with the harness's own.

    produce (idempotent acks=all confluent-kafka producer; value "<seq>" goes to partition
    seq % --partitions, so send order within a partition is seq order):
        A <partition> <offset> <value> <sent_ms> <acked_ms>   an acknowledged delivery; offset -1
                                 when librdkafka acknowledged it implicitly (a later batch of
                                 the idempotent producer was acknowledged while this one was
                                 being retried: it is in the log, at an offset nobody reported)
        F <value> <error> <sent_ms> <failed_ms>                 a delivery that failed
        N <sent> <acked> <failed> <unresolved>                 the totals, written at the end
    consume (confluent-kafka group member, eager range assignment, manual async commits):
        A <partition>,...  <ms>          partitions assigned (the whole assignment)
        V <partition>,...  <ms>          partitions revoked
        L <partition>,...  <ms>          partitions lost (session expired, fenced)
        R <partition> <offset> <value> <ms>   a record this member polled
        C <partition> <offset> <ms>      an offset commit the coordinator acknowledged
    read (manual assignment of every partition from the beginning to its high watermark):
        H <partition> <high watermark>
        R <partition> <offset> <value> <ms>
    any mode:
        E <ms> <message>                 a client error reported by librdkafka (not fatal)
        X <ms> <message>                 a fatal client error; the mode stops

SLUICE_NETNS_CLIENT_DEBUG=metadata,msg (any librdkafka debug contexts) turns on librdkafka's
debug log on stderr. Every client call has a timeout and every mode a deadline (--timeout); produce and consume
also stop when the --stop file exists. Exit status 0 on success, 1 on a client failure or a
missed deadline (the last line of output says which), 2 on usage errors.

Runnable by hand, for example:
    netns_clients.py produce --bootstrap 10.213.5.11:9092 --topic t --partitions 4 \
        --out p.tsv --stop stop --timeout 120
"""

import argparse
import os
import sys
import time


class Failure(Exception):
    """A client call failed or the deadline passed; the message says which."""


def now_ms():
    return int(time.time() * 1000)


def log(msg):
    print(f"[netns_clients] {now_ms()} {msg}", flush=True)


class Out:
    """The --out file; lines are flushed by the caller after each group of writes."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8")

    def write(self, *fields):
        self.f.write("\t".join(str(x).replace("\t", " ").replace("\n", " ") for x in fields))
        self.f.write("\n")

    def flush(self):
        self.f.flush()


def error_cb(out):
    def on_error(err):
        fatal = getattr(err, "fatal", lambda: False)()
        out.write("X" if fatal else "E", now_ms(), str(err))
        out.flush()
        print(f"[librdkafka {'FATAL' if fatal else 'error'}] {err}", file=sys.stderr, flush=True)

    return on_error


def common_conf(args, out):
    conf = {
        "bootstrap.servers": args.bootstrap,
        # A connection to an isolated broker shows up as a timeout, not a reset: keep the
        # timeouts short so the clients move to the new leaders within the faults.
        "socket.timeout.ms": 6000,
        "socket.connection.setup.timeout.ms": 3000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "topic.metadata.refresh.interval.ms": 1000,
        "error_cb": error_cb(out),
    }
    if os.environ.get("SLUICE_NETNS_CLIENT_DEBUG"):
        # librdkafka debug contexts (e.g. "metadata,msg,eos") on stderr, i.e. <name>.log.
        conf["debug"] = os.environ["SLUICE_NETNS_CLIENT_DEBUG"]
    return conf


def produce(args, deadline):
    from confluent_kafka import KafkaException, Producer

    out = Out(args.out)
    conf = common_conf(args, out)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "request.timeout.ms": 5000,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500,
            # Longer than any fault: every record is resolved once the faults heal.
            "message.timeout.ms": int(max(5.0, args.timeout - 20) * 1000),
        }
    )
    p = Producer(conf)
    counts = {"acked": 0, "failed": 0}

    def on_delivery(err, msg):
        value = msg.value().decode()
        sent = sent_at.pop(value, -1)
        if err is None:
            counts["acked"] += 1
            offset = msg.offset()
            out.write("A", msg.partition(), -1 if offset is None else offset, value, sent, now_ms())
        else:
            counts["failed"] += 1
            out.write("F", value, err, sent, now_ms())

    sent_at = {}
    seq = 0
    interval = 1.0 / args.rate
    next_send = time.monotonic()
    fatal = None
    while time.monotonic() < deadline and not os.path.exists(args.stop):
        now = time.monotonic()
        while now >= next_send and len(sent_at) < args.max_in_flight:
            value = str(seq)
            try:
                p.produce(args.topic, value=value.encode(), partition=seq % args.partitions,
                          on_delivery=on_delivery)
            except BufferError:
                break  # the local queue is full: serve delivery reports first
            except KafkaException as e:
                fatal = str(e)
                break
            sent_at[value] = now_ms()
            seq += 1
            next_send += interval
        if fatal:
            break
        if len(sent_at) >= args.max_in_flight:
            # Too much unresolved: do not build a backlog a fault cannot drain; send on time
            # again once deliveries come back.
            next_send = max(next_send, time.monotonic())
        p.poll(max(0.0, min(0.05, next_send - time.monotonic())))
        out.flush()
    left = p.flush(max(1.0, deadline - time.monotonic()))
    out.write("N", seq, counts["acked"], counts["failed"], left)
    out.flush()
    log(f"produce: sent {seq}, acknowledged {counts['acked']}, failed {counts['failed']}, "
        f"unresolved {left}")
    if fatal:
        raise Failure(f"produce failed: {fatal}")
    if left:
        raise Failure(f"{left} records still unresolved at the deadline")


def consume(args, deadline):
    from confluent_kafka import Consumer, KafkaException

    out = Out(args.out)

    def ids(partitions):
        return ",".join(str(tp.partition) for tp in partitions)

    def on_assign(consumer, partitions):
        out.write("A", ids(partitions), now_ms())
        out.flush()
        log(f"assigned {ids(partitions)}")

    def on_revoke(consumer, partitions):
        out.write("V", ids(partitions), now_ms())
        out.flush()
        log(f"revoked {ids(partitions)}")

    def on_lost(consumer, partitions):
        out.write("L", ids(partitions), now_ms())
        out.flush()
        log(f"lost {ids(partitions)}")

    def on_commit(err, partitions):
        if err is not None:
            log(f"commit failed: {err}")
            return
        for tp in partitions:
            if tp.error is None and tp.offset >= 0:
                out.write("C", tp.partition, tp.offset, now_ms())
        out.flush()

    conf = common_conf(args, out)
    conf.update(
        {
            "group.id": args.group,
            "client.id": args.client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": max(100, args.session_timeout_ms // 4),
            "on_commit": on_commit,
        }
    )
    c = Consumer(conf)
    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    polled = 0
    while not os.path.exists(args.stop):
        if time.monotonic() >= deadline:
            raise Failure(f"deadline passed after {polled} records")
        msgs = c.consume(num_messages=500, timeout=0.2)
        wrote = False
        for m in msgs:
            if m.error() is not None:
                out.write("E", now_ms(), f"consume: {m.error()}")
                continue
            out.write("R", m.partition(), m.offset(), m.value().decode(), now_ms())
            polled += 1
            wrote = True
        if wrote:
            # Written before committed: a commit never covers a record the file lacks.
            out.flush()
            try:
                c.commit(asynchronous=True)
            except KafkaException as e:
                log(f"commit not sent: {e}")
    try:
        c.commit(asynchronous=False)
    except KafkaException as e:
        log(f"final commit failed: {e}")
    c.close()
    out.flush()
    log(f"consume: {polled} records polled")


def read(args, deadline):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    out = Out(args.out)
    conf = common_conf(args, out)
    conf.update(
        {
            "group.id": "netns-read",
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
            "check.crcs": True,
        }
    )
    c = Consumer(conf)

    def left(cap):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Failure("deadline passed")
        return min(cap, remaining)

    ends = {}
    for p in range(args.partitions):
        while True:
            try:
                lo, hi = c.get_watermark_offsets(TopicPartition(args.topic, p), timeout=left(5.0))
                break
            except KafkaException as e:
                log(f"watermarks of partition {p}: {e}; retrying")
        if lo != 0:
            raise Failure(f"partition {p} starts at {lo}, not 0")
        ends[p] = hi
        out.write("H", p, hi)
    out.flush()
    c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in ends])
    nxt = {p: 0 for p in ends}
    count = 0
    while any(nxt[p] < ends[p] for p in ends):
        for m in c.consume(num_messages=1000, timeout=left(0.5)):
            if m.error() is not None:
                out.write("E", now_ms(), f"read: {m.error()}")
                continue
            p = m.partition()
            out.write("R", p, m.offset(), m.value().decode(), now_ms())
            nxt[p] = max(nxt[p], m.offset() + 1)
            count += 1
        out.flush()
    c.close()
    log(f"read: {count} records up to {ends}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("mode", choices=["produce", "consume", "read"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, required=True, help="deadline in seconds")
    ap.add_argument("--stop", default="", help="produce, consume: stop when this file exists")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--rate", type=float, default=200.0, help="produce: records per second")
    ap.add_argument("--max-in-flight", type=int, default=5000,
                    help="produce: pause sending while this many records are unresolved")
    ap.add_argument("--group", default="")
    ap.add_argument("--client-id", default="netns-member")
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    args = ap.parse_args()
    if args.mode == "consume" and not args.group:
        ap.error("consume needs --group")
    if args.mode in ("produce", "consume") and not args.stop:
        ap.error(f"{args.mode} needs --stop")
    deadline = time.monotonic() + args.timeout
    try:
        {"produce": produce, "consume": consume, "read": read}[args.mode](args, deadline)
    except Failure as e:
        log(f"FAILED: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
