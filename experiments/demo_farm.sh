# Sourced by the demos (experiments/demo.sh, experiments/demo_campaign.sh): the programs of
# the build dir $build, and acs-server on loopback with two local acs-workers. start_farm
# needs $out and the array pids (every started process is added to it, for the caller's
# trap to stop).

acs="$build/cli/acs"
zoo="$build/experiments/zoo/acs-zoo"
server_bin="$build/server/acs-server"
worker_bin="$build/devices/acs-worker"

step() { printf '\n=== %s\n' "$*"; }

# start_farm DATA_DIR ADDRESS [acs-server flags...]: initializes DATA_DIR when it has no
# store, starts the server (log in $out/server.log) and two workers, and waits until both
# workers are online.
start_farm() {
  local data_dir=$1 address=$2
  shift 2
  if [ ! -f "$data_dir/acs.db" ]; then "$server_bin" --init --data-dir "$data_dir" >/dev/null; fi
  "$server_bin" --data-dir "$data_dir" --listen "$address" --no-auth "$@" >"$out/server.log" 2>&1 &
  pids+=($!)
  local name
  for name in worker-1 worker-2; do
    "$worker_bin" serve --server "$address" --name "$name" >"$out/$name.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 1 100); do
    if [ "$("$acs" devices --server "$address" 2>/dev/null | grep -c online || true)" -ge 2 ]; then return 0; fi
    sleep 0.3
  done
}
