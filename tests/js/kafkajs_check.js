// kafkajs 2 against a Kafka-compatible broker: create a topic, produce keyed records through an
// idempotent producer with gzip, and check the acknowledged base offsets against the topic's
// offsets (ListOffsets) and offsets by timestamp. kafkajs has no manual-assignment consumer, so
// reading back waits for consumer groups. Exits non-zero with a message on any mismatch.
//
//     node kafkajs_check.js 127.0.0.1:9092 [topic]
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const [bootstrap, topic = 'kafkajs-check'] = process.argv.slice(2);
const fail = (msg) => { console.error(`FAIL [kafkajs]: ${msg}`); process.exit(1); };
setTimeout(() => fail('did not finish within 60 s'), 60000).unref();

(async () => {
  const kafka = new Kafka({ clientId: 'kafkajs-check', brokers: [bootstrap], logLevel: logLevel.ERROR });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  const counts = [0, 0, 0];
  const baseTs = 1800000000000;
  const firstOffsetAtTs = [];
  for (let i = 0; i < 10; i++) {
    const partition = i % 3;
    const messages = [];
    for (let j = 0; j < 20; j++) messages.push({ key: `k${j}`, value: `v${i}-${j}`, partition, timestamp: `${baseTs + i * 100 + j}` });
    const [res] = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
    if (res.errorCode !== 0) fail(`send ${i}: error ${res.errorCode}`);
    if (Number(res.baseOffset) !== counts[partition]) fail(`send ${i}: base offset ${res.baseOffset}, want ${counts[partition]}`);
    firstOffsetAtTs.push([partition, baseTs + i * 100, counts[partition]]);
    counts[partition] += messages.length;
  }
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets(topic);
  for (const o of offsets) {
    if (Number(o.high) !== counts[o.partition] || Number(o.low) !== 0) fail(`partition ${o.partition}: low ${o.low} high ${o.high}, want 0 and ${counts[o.partition]}`);
  }
  for (const [partition, ts, want] of firstOffsetAtTs) {
    const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
    const got = byTs.find((x) => x.partition === partition);
    if (!got || Number(got.offset) !== want) fail(`partition ${partition} at ${ts}: offset ${got && got.offset}, want ${want}`);
  }
  await admin.disconnect();
  console.log(`PASS [kafkajs]: ${counts.reduce((a, b) => a + b, 0)} records, offsets and timestamps check out`);
  process.exit(0);
})().catch((e) => fail(e && e.stack || e));
