#!/usr/bin/env bash
# Side-by-side benchmark of one `sluice broker` and a three-broker sluice cluster (replication
# factor 3), both release builds on loopback, the same sluice-bench workloads against each, one
# summary table. 100-byte records, acks=all (and acks=1 for reference), 1 partition:
#   throughput: produce RECORDS as fast as possible
#   latency:    produce at half the peak rate just measured for about LAT_SECS seconds and report
#               percentiles (open loop, linger.ms=1)
#
# Not part of CI. Bounded: every bench run has a timeout, and the brokers are killed on exit.
#
# Environment knobs: RECORDS=1000000, LAT_SECS=10, LINGER_MS=5, RUN_TIMEOUT=300, CARGO_TARGET_DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RECORDS=${RECORDS:-1000000}
LAT_SECS=${LAT_SECS:-10}
LINGER_MS=${LINGER_MS:-5}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}

log() { echo "cluster-bench: $*" >&2; }

log "building sluice and sluice-bench (release)"
(cd "$ROOT" && cargo build --release -p sluice --bin sluice -p sluice-tests --bin sluice-bench >&2)
SLUICE="$TARGET/release/sluice"
BENCH="$TARGET/release/sluice-bench"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cluster-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

source "$ROOT/tests/bench/lib.sh"

# start NAME DATA ARGS...: one broker in the background; sets PORT to its client port. (Not a
# command substitution: the broker's pid must reach PIDS in this shell, for the cleanup.)
start() {
  local name=$1 data=$2; shift 2
  PORT=$(free_port)
  mkdir -p "$data"
  "$SLUICE" broker --data-dir "$data" --listen "127.0.0.1:$PORT" --metrics-listen "" "$@" \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  wait_port "$PORT" "$!" "$name"
}

declare -A BOOT RF
start single "$WORK/single" --peer-listen "127.0.0.1:$(free_port)"
BOOT[single]="127.0.0.1:$PORT"; RF[single]=1
peers=($(free_port) $(free_port) $(free_port))
voters="1=127.0.0.1:${peers[0]},2=127.0.0.1:${peers[1]},3=127.0.0.1:${peers[2]}"
boots=()
for i in 1 2 3; do
  start "node$i" "$WORK/node$i" --node-id "$i" --peer-listen "127.0.0.1:${peers[$((i-1))]}" \
    --voters "$voters"
  boots+=("127.0.0.1:$PORT")
done
BOOT[cluster]=$(IFS=,; echo "${boots[*]}"); RF[cluster]=3
log "single on ${BOOT[single]}; cluster on ${BOOT[cluster]}"

# The cluster needs its controller and all three registrations before a topic with RF 3.
deadline=$((SECONDS + 30))
until "$SLUICE" cluster status --bootstrap "${boots[0]}" 2>/dev/null | grep -q "3 live"; do
  ((SECONDS < deadline)) || { log "cluster did not form"; tail -n 20 "$WORK"/node*.log >&2; exit 1; }
  sleep 0.2  # a script, not a test: paces the probe; the deadline above bounds it
done

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# topic SIDE NAME: creates the topic and waits until its partition has a leader, so a run
# measures steady state, not the first election.
topic() {
  local side=$1 name=$2 first=${BOOT[$1]%%,*}
  "$SLUICE" topic create "$name" --partitions 1 --replication-factor "${RF[$side]}" \
    --bootstrap "$first" >/dev/null
  local deadline=$((SECONDS + 30))
  until "$SLUICE" cluster status --bootstrap "$first" 2>/dev/null | grep -q " 0 without a leader"; do
    ((SECONDS < deadline)) || { log "$side: $name has no leader"; exit 1; }
    sleep 0.1  # a script, not a test: paces the probe; the deadline above bounds it
  done
}

bench() {
  local side=$1 label=$2 name=$3; shift 3
  log "$side: $label"
  topic "$side" "$name"
  local out
  out=$(timeout "$RUN_TIMEOUT" "$BENCH" "$@" --topic "$name" --bootstrap "${BOOT[$side]}" \
    --record-size 100 --json --timeout-s "$RUN_TIMEOUT") || {
    log "$side: $label failed (exit $?)"; tail -n 20 "$WORK"/*.log >&2
    return 0
  }
  while IFS= read -r line; do
    [[ $line == \{* ]] && printf '{"side":"%s","workload":"%s",%s\n' "$side" "$label" "${line#\{}" >>"$RESULTS"
  done <<<"$out"
}

peak() {
  python3 - "$RESULTS" "$1" "$2" <<'PY'
import json, sys
path, side, label = sys.argv[1:]
rates = [r["records_per_s"] for r in map(json.loads, open(path))
         if r["side"] == side and r["workload"] == label and r["phase"] == "produce"]
print(int(rates[0]) if rates else 0)
PY
}

for acks in all 1; do
  for side in single cluster; do
    bench "$side" "acks=$acks" "tput-acks-$acks" produce --records "$RECORDS" \
      --acks "$acks" --linger-ms "$LINGER_MS"
  done
done
for side in single cluster; do
  top=$(peak "$side" "acks=all")
  if ((top < 2)); then log "$side: no peak, skipping its latency run"; continue; fi
  half=$((top / 2))
  bench "$side" "acks=all @50%" "lat-acks-all" produce --records $((half * LAT_SECS)) \
    --acks all --linger-ms 1 --rate "$half"
done

python3 - "$RESULTS" "$RECORDS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def f(v, d=2):
    return "-" if v is None else f"{v:.{d}f}"
print()
print(f"100-byte records, 1 partition, {sys.argv[2]} records per throughput phase; "
      "single = 1 broker (RF 1), cluster = 3 brokers (RF 3); latency = send to delivery report")
hdr = (f"{'side':<8} {'workload':<15} {'records':>9} {'rec/s':>10} {'MB/s':>7} "
       f"{'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}")
print(hdr)
print("-" * len(hdr))
for r in rows:
    print(f"{r['side']:<8} {r['workload']:<15} {r['records']:>9} {r['records_per_s']:>10.0f} "
          f"{r['mb_per_s']:>7.1f} {f(r['p50_ms']):>7} {f(r['p99_ms']):>7} {f(r['p999_ms']):>8}")
PY
