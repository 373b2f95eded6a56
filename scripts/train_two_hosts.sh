#!/usr/bin/env bash
# Multi-host `glue-tf train-all` without Kubernetes (MultiWorkerMirroredStrategy over TF_CONFIG).
# Run the same command on every host, each with its own INDEX (its position in HOSTS):
#
#   host-a$ HOSTS=host-a:12345,host-b:12345 INDEX=0 scripts/train_two_hosts.sh \
#             --glue-dir /shared/glue_data --out /shared/runs/latest
#   host-b$ HOSTS=host-a:12345,host-b:12345 INDEX=1 scripts/train_two_hosts.sh \
#             --glue-dir /shared/glue_data --out /shared/runs/latest
#
# Every argument goes to `glue-tf train-all` unchanged and must be the same on every host.
# Worker 0 is the chief: only it writes checkpoints, exports and the report. Give --out on
# storage all hosts share (a resumed run reads the chief's checkpoint on every worker); a local
# folder per host does for a fresh run, and then only host 0's holds the exports.
# The port of each host must be reachable from the others. More hosts: list them all in HOSTS.
set -euo pipefail

usage="usage: HOSTS=host-a:12345,host-b:12345 INDEX=0|1 $0 [glue-tf train-all flags...]"
: "${HOSTS:?$usage}"
: "${INDEX:?$usage}"

IFS=, read -r -a hosts <<< "$HOSTS"
if (( ${#hosts[@]} < 2 )); then
    echo "train_two_hosts.sh: HOSTS must name at least 2 host:port pairs, got '$HOSTS'" >&2
    exit 2
fi
for host in "${hosts[@]}"; do
    if ! [[ $host =~ ^[A-Za-z0-9._-]+:[0-9]+$ ]]; then
        echo "train_two_hosts.sh: '$host' in HOSTS is not host:port" >&2
        exit 2
    fi
done
if ! [[ $INDEX =~ ^[0-9]+$ ]] || (( 10#$INDEX >= ${#hosts[@]} )); then
    echo "train_two_hosts.sh: INDEX must be 0 to $(( ${#hosts[@]} - 1 )) (this host's place in HOSTS), got '$INDEX'" >&2
    exit 2
fi

workers=""
for host in "${hosts[@]}"; do
    workers+="${workers:+, }\"$host\""
done
TF_CONFIG=$(printf '{"cluster": {"worker": [%s]}, "task": {"type": "worker", "index": %d}}' \
    "$workers" "$(( 10#$INDEX ))")
export TF_CONFIG
echo "TF_CONFIG=$TF_CONFIG" >&2

# glue-tf from PATH, else this checkout's virtual environment (make install).
glue_tf=glue-tf
if ! command -v "$glue_tf" > /dev/null; then
    glue_tf="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/glue-tf"
fi
exec "$glue_tf" train-all "$@"
