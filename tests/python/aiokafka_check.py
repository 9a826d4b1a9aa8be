"""aiokafka against a Kafka-compatible broker: create a topic, produce keyed records through an
idempotent acks=all producer with compression, read them back with manual assignment, and check
end offsets and offsets by timestamp. Exits non-zero with a message on any mismatch.

    aiokafka_check.py --bootstrap 127.0.0.1:9092 [--topic T] [--timeout 60]
"""

import argparse
import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 3
RECORDS = 300


def fail(msg):
    print(f"FAIL [aiokafka]: {msg}", flush=True)
    sys.exit(1)


async def run(bootstrap, topic):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        await admin.close()

    acked = {}  # partition -> list of (offset, key, value, timestamp)
    base_ts = 1_800_000_000_000
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
            compression_type=codec, linger_ms=5)
        await producer.start()
        try:
            futures = []
            for i in range(RECORDS // 4):
                n = len(futures) + sum(len(v) for v in acked.values())
                key = f"k{n % 11}".encode()
                value = f"{codec}-{n}".encode()
                ts = base_ts + n
                futures.append((key, value, ts, await producer.send(topic, value, key=key, timestamp_ms=ts)))
            for key, value, ts, fut in futures:
                md = await fut
                acked.setdefault(md.partition, []).append((md.offset, key, value, ts))
        finally:
            await producer.stop()

    for p, recs in acked.items():
        offsets = [o for o, *_ in recs]
        if offsets != list(range(len(recs))):
            fail(f"partition {p}: offsets {offsets[:10]}... are not dense from 0 in send order")

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = {}
        total = sum(len(v) for v in acked.values())
        deadline = asyncio.get_running_loop().time() + 30
        while sum(len(v) for v in got.values()) < total:
            if asyncio.get_running_loop().time() > deadline:
                fail(f"consumed {sum(len(v) for v in got.values())} of {total}")
            batch = await consumer.getmany(timeout_ms=1000)
            for tp, msgs in batch.items():
                for m in msgs:
                    got.setdefault(tp.partition, []).append((m.offset, m.key, m.value, m.timestamp))
        for p, recs in acked.items():
            if got.get(p) != recs:
                fail(f"partition {p}: read back differs from what was acknowledged")
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            if ends[tp] != len(acked.get(tp.partition, [])):
                fail(f"{tp}: end offset {ends[tp]}, want {len(acked.get(tp.partition, []))}")
        # By timestamp: each partition's middle record is found exactly.
        for p, recs in acked.items():
            o, _, _, ts = recs[len(recs) // 2]
            found = await consumer.offsets_for_times({TopicPartition(topic, p): ts})
            hit = found[TopicPartition(topic, p)]
            if hit is None or hit.offset != o:
                fail(f"partition {p}: offsets_for_times({ts}) = {hit}, want {o}")
    finally:
        await consumer.stop()
    print(f"PASS [aiokafka]: {total} records over {len(acked)} partitions, 4 codecs", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="aiokafka-check")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(a.bootstrap, a.topic), a.timeout))
    except asyncio.TimeoutError:
        fail(f"did not finish within {a.timeout} s")


if __name__ == "__main__":
    main()
