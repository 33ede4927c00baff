#!/usr/bin/env bash
# The long harness runs (by hand, not in `make test`): every workload and
# isolation level for 60 s on 3 to 5 nodes, with latency, drops, duplicates,
# partitions and SIGKILL + restart under --data-dir, and replicated shards
# whose replicas keep moving. About 10 minutes on 2 cores. Each run's summary and verdict go to stdout; a failing run keeps
# its directory (history, net.log, node stderr) under $OUT and the script
# exits 1 at the end.
# Usage: tests/cluster_sim/long_runs.sh [SECONDS]   (default 60; from the repository root)
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
out=${OUT:-$(mktemp -d /tmp/strata-long-runs.XXXXXX)}
net="--latency-ms 1-10 --drop 0.03 --dup 0.05"
runs=(
  "--workload txn --nodes 3 --clients 16 --latency-ms 1-20 --drop 0.05 --dup 0.05 --partition 10-20:n1/n2,n3 --clients-on-network --drain-intents 10 --seed 11"
  "--workload txn --isolation snapshot --nodes 3 --clients 12 --kill-every 3000 --timeout-ms 1000 --latency-ms 1-5 --drop 0.02 --dup 0.05 --drain-intents 10 --seed 12"
  "--workload list-append --nodes 3 --clients 12 $net --partition 10-20:n1/n2,n3 --partition 35-40:n2/n1,n3 --clients-on-network --drain-intents 10 --seed 13"
  "--workload list-append --nodes 3 --clients 12 --kill-every 4000 --timeout-ms 1000 --latency-ms 1-5 --drop 0.02 --dup 0.05 --drain-intents 10 --seed 17"
  "--workload rw-register --nodes 3 --clients 12 $net --partition 10-20:n1/n2,n3 --clients-on-network --drain-intents 10 --seed 14"
  "--workload rw-register --isolation snapshot --nodes 5 --clients 12 $net --partition 10-20:n1,n2/n3,n4,n5 --clients-on-network --drain-intents 10 --seed 15"
  "--workload lin-kv --nodes 3 --clients 12 $net --partition 10-20:n1/n2,n3 --clients-on-network --seed 16"
  "--workload lin-kv --nodes 5 --clients 12 --kill-every 4000 --timeout-ms 1000 --latency-ms 1-5 --drop 0.02 --dup 0.05 --seed 18"
  # Replicated shards whose replicas keep moving (shard_place every 700 ms).
  "--workload list-append --nodes 5 --clients 12 --node-arg=--replication-factor --node-arg=3 --move-every 700 --kill-every 5000 --down-ms 500 $net --partition 10-20:n1,n2/n3,n4,n5 --clients-on-network --seed 19"
  "--workload lin-kv --nodes 4 --clients 12 --node-arg=--replication-factor --node-arg=3 --move-every 500 --kill-every 4000 --down-ms 300 $net --clients-on-network --seed 20"
)
failed=0
i=0
for args in "${runs[@]}"; do
  i=$((i + 1))
  echo "=== run $i/${#runs[@]}: run.py $args --seconds $seconds"
  start=$SECONDS
  # shellcheck disable=SC2086  # the flags are meant to split
  if python3 tests/cluster_sim/run.py $args --seconds "$seconds" --run-dir "$out/run$i"; then
    rm -rf "$out/run$i"
  else
    failed=1
    echo "run $i FAILED; its directory: $out/run$i"
  fi
  echo "=== run $i took $((SECONDS - start)) s"
done
[ "$failed" -eq 0 ] && echo "all ${#runs[@]} runs passed" && rmdir "$out" 2>/dev/null
exit "$failed"
