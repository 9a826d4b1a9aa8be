# Shell helpers the benchmark scripts share (sourced, not run). Expects `log` and `WORK` (the
# directory where each process NAME logs to NAME.log) to be defined by the caller.

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID NAME: until PORT accepts connections (at most 30 s) or the process exits.
wait_port() {
  local port=$1 pid=$2 name=$3 deadline=$((SECONDS + 30))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited early; its log:"; tail -n 30 "$WORK/$name.log" >&2; exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "$name did not listen on $port within 30 s"; exit 1
    fi
    sleep 0.1  # a script, not a test: paces the probe; the deadline above bounds it
  done
}
