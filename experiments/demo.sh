#!/usr/bin/env bash
# The demo behind `make demo`: the service on this machine. Trains (or reuses) the
# ResNet-20-shaped zoo model on Fashion-MNIST, starts acs-server on loopback (SQLite in a
# temporary data dir, or $ACS_DEMO_DATA) with two local acs-workers, submits a job with a
# latency budget of 0.5x and the AMC agent (the server first measures kernels on the
# workers and trains this machine's latency predictor), watches it to the end, downloads
# the compressed model and evaluates it on the test set; then stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
data=/usr/share/datasets/fashion-mnist
model=resnet20
zoo_dir=data/zoo
out=data/demo
port=${ACS_DEMO_PORT:-50551}
address=127.0.0.1:$port
http_address=127.0.0.1:${ACS_DEMO_HTTP_PORT:-$((port + 1))}
episodes=${ACS_DEMO_EPISODES:-60}
mkdir -p "$zoo_dir" "$out"

. experiments/demo_farm.sh

if [ -n "${ACS_DEMO_DATA:-}" ]; then
  server_data=$ACS_DEMO_DATA
  keep_data=1
else
  server_data=$(mktemp -d /tmp/acs-demo.XXXXXX)
  keep_data=0
fi
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$keep_data" = 0 ]; then rm -rf "$server_data"; fi
}
trap stop_all EXIT

step "model zoo: $model (trained once, then reused from $zoo_dir)"
"$zoo" train --model "$model" --out "$zoo_dir"

step "acs inspect $zoo_dir/$model.pt --input 1x1x28x28"
"$acs" inspect "$zoo_dir/$model.pt" --input 1x1x28x28

step "acs-server on $address (data in $server_data, no auth: loopback only) and two workers"
start_farm "$server_data" "$address" --http-listen "$http_address" --campaign-samples 300
"$acs" devices --server "$address"

step "acs submit: latency budget 0.5x on this machine's device class, AMC agent, $episodes episodes"
job=$("$acs" submit "$zoo_dir/$model.pt" --input 1x1x28x28 --data name:fashion-mnist --test-data name:fashion-mnist \
  --budget latency=0.5x \
  --agent amc --episodes "$episodes" --server "$address")
echo "job $job (in the dashboard: http://$http_address/#/job/$job; as JSON: http://$http_address/api/v1/jobs/$job, its events: .../events)"

step "acs watch $job"
# Exit 1 also when the job ended BUDGET_NOT_MET (its result measured over the budget):
# the demo then goes on and says so at the end; a FAILED job stops it at the download.
outcome="met its latency budget as measured"
if ! "$acs" watch "$job" --server "$address"; then
  outcome="did NOT meet its latency budget as measured (see the job's summary above)"
fi

step "acs download $job"
"$acs" download "$job" --all --out "$out/$job" --server "$address"

step "the downloaded compressed model on the Fashion-MNIST test set (agreement with the dense model too)"
"$acs" eval "$out/$job/compressed.pt" --data "$data" --reference "$zoo_dir/$model.pt"

step "done: the job $outcome; the compressed model is $out/$job/compressed.pt (policy.json and report.json beside it)"
