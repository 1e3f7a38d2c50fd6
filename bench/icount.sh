#!/usr/bin/env bash
# Instructions a server executes per request, counted by valgrind's callgrind: the same count for the
# same build and requests whatever else the machine is doing, where wall-clock figures on a shared
# 2-core machine move by a third between runs (docs/benchmarks.md, "Counting instructions").
#
#   bench/icount.sh URL BODY_FILE WARM N -- server command...
#   bench/icount.sh http://127.0.0.1:8101/v1/models/mlp-bench-inline/predict body.json 2500 1000 -- \
#     node packages/server/dist/cli/main.js serve --models /tmp/repo --port 8101 --log-level warn
#
# The server starts under callgrind with counting off; WARM requests (one connection, one after the
# other) let V8 compile the hot path; then N requests are counted, and the same server is counted idle
# for IDLE_S seconds (default 20) so work done on timers (pollers, metrics) can be taken out: the
# "corrected" column is busy − idle rate × busy seconds. Only the main thread's figure is comparable
# between builds: V8's helper threads compile and collect on their own schedule, which valgrind's
# slowness (about 50×) stretches. CONC=n (default 1) keeps n requests in flight on n connections, so
# the counted requests are the loaded path (batches of several requests, runs in the worker threads):
# under valgrind the server is the slow side and requests queue up as they would at saturation.
# Needs valgrind (Debian's package) and Node; never run by the tests.
set -euo pipefail
url=$1 body=$2 warm=$3 n=$4
shift 4
[ "${1:-}" = "--" ] && shift
idle_s=${IDLE_S:-20}
out=$(mktemp -d)

post() { # count: keep-alive POSTs of the body, CONC at a time; prints how many were not 200
  node --input-type=module -e '
    import http from "node:http";
    import { readFileSync } from "node:fs";
    const [url, file, count, conc] = process.argv.slice(1);
    const body = readFileSync(file);
    const agent = new http.Agent({ keepAlive: true, maxSockets: Number(conc) });
    let bad = 0;
    let left = Number(count);
    const loop = async () => {
      while (left-- > 0)
        await new Promise((resolve, reject) => {
          const r = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
            if (res.statusCode !== 200) bad++;
            res.resume();
            res.on("end", resolve);
          });
          r.on("error", reject);
          r.end(body);
        });
    };
    await Promise.all(Array.from({ length: Number(conc) }, loop));
    agent.destroy();
    console.log(bad);
  ' "$url" "$body" "$1" "${CONC:-1}"
}

valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \
  --callgrind-out-file="$out/cg" "$@" > "$out/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2> /dev/null || true' EXIT
for _ in $(seq 1 900); do
  if ! kill -0 $pid 2> /dev/null; then
    echo "the server exited before it answered:" >&2
    grep -v '^==' "$out/server.log" | tail -20 >&2
    exit 1
  fi
  curl -sf -o /dev/null -X POST -H 'content-type: application/json' --data-binary "@$body" "$url" && break
  sleep 1
done
echo "warm-up: $(post "$warm") of $warm not 200" >&2
callgrind_control -i on $pid > /dev/null
t0=$(date +%s.%N)
bad=$(post "$n")
t1=$(date +%s.%N)
callgrind_control -d $pid > /dev/null
sleep "$idle_s"
t2=$(date +%s.%N)
callgrind_control -d $pid > /dev/null
kill -INT $pid 2> /dev/null || true
sleep 2
echo "counted: $bad of $n not 200" >&2

# Dump 1 is the N requests, dump 2 the idle stretch; one file per thread (…-01 is the main thread).
for f in "$out"/cg.1-*; do
  thread=${f##*-}
  busy=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
  idle=$(awk '/^(summary|totals):/ { print $2; exit }' "$out/cg.2-$thread" 2> /dev/null || echo 0)
  awk -v t="$thread" -v b="${busy:-0}" -v i="${idle:-0}" -v n="$n" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
    busy_s = t1 - t0; idle_s = t2 - t1
    if (b == 0) exit
    printf "thread %s  busy %10.0f  idle %10.0f/s  corrected %10.0f  instructions per request\n",
      t, b / n, i / idle_s, (b - i / idle_s * busy_s) / n
  }'
done
rm -rf "$out"
