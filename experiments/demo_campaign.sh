#!/usr/bin/env bash
# The demo behind `make demo-campaign`: a small nightly campaign on the zoo
# (experiments/campaigns/zoo-demo.json: ResNet-20 at flops=0.5x with the AMC and random
# agents) against acs-server on loopback with two local workers, started the way
# experiments/demo.sh starts them. Runs the campaign for yesterday, then for today (the
# second run is compared with the first), and prints where the HTML report is. Exit code:
# acs campaign run's (0, 3 when a gated metric regressed, 4 when cells failed).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
spec=experiments/campaigns/zoo-demo.json
out=data/demo-campaign
port=${ACS_DEMO_PORT:-50561}
address=127.0.0.1:$port
mkdir -p data/zoo "$out"

. experiments/demo_farm.sh

server_data=$(mktemp -d /tmp/acs-demo-campaign.XXXXXX)
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$server_data"
}
trap stop_all EXIT

step "model zoo: resnet20 (trained once, then reused from data/zoo)"
"$zoo" train --model resnet20 --out data/zoo

step "acs-server on $address (data in $server_data, no auth: loopback only) and two workers"
start_farm "$server_data" "$address" --campaign-samples 120

yesterday=$(date -u -d yesterday +%F)
today=$(date -u +%F)
step "acs campaign run $spec --date $yesterday (the baseline night)"
"$acs" campaign run "$spec" --server "$address" --date "$yesterday" --out "$out/$yesterday.html" || true

step "acs campaign run $spec --date $today (compared with $yesterday)"
code=0
"$acs" campaign run "$spec" --server "$address" --date "$today" --out "$out/$today.html" || code=$?
"$acs" campaign report --campaign zoo-demo --date "$today" --server "$address" --format md || true

step "done (exit code $code): the HTML report is $out/$today.html"
exit "$code"
