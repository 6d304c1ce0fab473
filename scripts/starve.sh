#!/usr/bin/env bash
# Run a command on a starved CPU: it and everything it starts are pinned to one core, beside two
# busy loops on the same core that this script starts and stops. Results must not depend on
# how fast the machine is; this is how `make test-slow` shows they do not.
#   scripts/starve.sh COMMAND [ARG…]      (STARVE_CPU=N picks the core, default 0)
set -euo pipefail
cpu=${STARVE_CPU:-0}
busy=()
for _ in 1 2; do
  taskset -c "$cpu" sh -c 'while :; do :; done' &
  busy+=($!)
done
trap 'kill "${busy[@]}" 2>/dev/null || true' EXIT
echo "starved: pinned to CPU $cpu beside ${#busy[@]} busy loops" >&2
taskset -c "$cpu" "$@"
