#!/usr/bin/env bash
# From nothing to a running cluster on this machine, step by step, with progress.
#
#   deploy/init-cluster.sh [--datadir DIR] [--replicas N] [--rpc-port P] [--block-time S]
#                          [--genesis genesis.json --chain chain.rlp]
#
# 1. broker: the one in ETHERCATTLE_BROKER, or a local Tansu broker (memory: lost when stopped)
# 2. `ethercattle cluster init`: topics, the master's database (dev genesis, or an import of
#    --genesis/--chain), the master's snapshot into DIR/snapshots, restored into each
#    replica's datadir
# 3. the master (`ethercattle master --dev`, or `ethercattle master` serving an imported chain)
# 4. the replicas (`faust -L uvloop -A pipeline worker`), each followed by `ethercattle cluster wait`
#    until it is ready
# Then it waits; Ctrl-C stops every process it started. Logs: DIR/*.log.
set -euo pipefail
cd "$(dirname "$0")/.."

DATADIR=var/cluster
REPLICAS=2
RPC_PORT=8546
BLOCK_TIME=2
GENESIS=""
CHAIN=""
while (($#)); do
    case "$1" in
        --datadir) DATADIR=$2; shift 2 ;;
        --replicas) REPLICAS=$2; shift 2 ;;
        --rpc-port) RPC_PORT=$2; shift 2 ;;
        --block-time) BLOCK_TIME=$2; shift 2 ;;
        --genesis) GENESIS=$2; shift 2 ;;
        --chain) CHAIN=$2; shift 2 ;;
        *) echo "usage: $0 [--datadir DIR] [--replicas N] [--rpc-port P] [--block-time S] [--genesis G --chain C]" >&2; exit 2 ;;
    esac
done

VENV_BIN=${VENV_BIN:-.venv/bin}
PY="$VENV_BIN/python"
mkdir -p "$DATADIR"
DATADIR=$(cd "$DATADIR" && pwd)
PIDS=()
stop_all() {
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop_all EXIT
spawn() {  # spawn LOGNAME CMD...: a process in its own group, logging to DATADIR/LOGNAME.log
    local log=$1; shift
    setsid "$@" >>"$DATADIR/$log.log" 2>&1 &
    PIDS+=($!)
}
wait_port() {  # wait_port NAME PORT: until the last spawned process listens, or fail with its log
    local pid=${PIDS[-1]}
    for _ in $(seq 600); do
        (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$1 exited; the end of $DATADIR/$1.log:" >&2
            tail -20 "$DATADIR/$1.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "$1 did not listen on port $2 within 60s (see $DATADIR/$1.log)" >&2
    exit 1
}

export ETHERCATTLE_CLUSTER=${ETHERCATTLE_CLUSTER:-local}
if [[ -z "${ETHERCATTLE_SECRET:-}" ]]; then
    [[ -f "$DATADIR/secret" ]] || (umask 077 && "$PY" -c "import secrets; print(secrets.token_hex(24))" >"$DATADIR/secret")
    export ETHERCATTLE_SECRET=$(cat "$DATADIR/secret")
fi
if [[ -z "${ETHERCATTLE_BROKER:-}" ]]; then
    BROKER_PORT=${BROKER_PORT:-9092}
    echo "[broker] local Tansu broker on 127.0.0.1:$BROKER_PORT (memory storage: starting from empty databases)"
    rm -rf "$DATADIR/master" "$DATADIR/snapshots" "$DATADIR"/replica-*
    spawn broker "$PY" -m deploy.localbroker --port "$BROKER_PORT"
    wait_port broker "$BROKER_PORT"
    export ETHERCATTLE_BROKER="kafka://127.0.0.1:$BROKER_PORT"
else
    echo "[broker] $ETHERCATTLE_BROKER"
fi

SOURCE=(--dev)
[[ -n "$GENESIS" ]] && SOURCE=(--genesis "$GENESIS" --chain "$CHAIN")
REPLICA_DIRS=()
for ((i = 0; i < REPLICAS; i++)); do REPLICA_DIRS+=(--replica-datadir "$DATADIR/replica-$i"); done
ETHERCATTLE_DATADIR="$DATADIR/master" "$PY" -m pipeline cluster init "${SOURCE[@]}" \
    --snapshot-dir "$DATADIR/snapshots" "${REPLICA_DIRS[@]}"

MASTER_PORT=$((RPC_PORT - 1))
if [[ -z "$GENESIS" ]]; then
    echo "[master] dev master, RPC http://127.0.0.1:$MASTER_PORT"
    MASTER_ARGS=(--dev --block-time "$BLOCK_TIME")
else
    echo "[master] serving the imported chain (heartbeats), RPC http://127.0.0.1:$MASTER_PORT"
    MASTER_ARGS=()
fi
ETHERCATTLE_DATADIR="$DATADIR/master" spawn master "$PY" -m pipeline master "${MASTER_ARGS[@]}" --rpc-port "$MASTER_PORT"
wait_port master "$MASTER_PORT"

for ((i = 0; i < REPLICAS; i++)); do
    PORT=$((RPC_PORT + i))
    echo "[replica-$i] http://127.0.0.1:$PORT/ (status page /status)"
    ETHERCATTLE_DATADIR="$DATADIR/replica-$i" ETHERCATTLE_REPLICA_ID="replica-$i" \
        ETHERCATTLE_EMIT_TARGETS="http://127.0.0.1:$MASTER_PORT" \
        spawn "replica-$i" "$VENV_BIN/faust" -L uvloop -A pipeline worker --web-port "$PORT" --web-host 127.0.0.1
    wait_port "replica-$i" "$PORT"
done
for ((i = 0; i < REPLICAS; i++)); do
    "$PY" -m pipeline cluster wait --url "http://127.0.0.1:$((RPC_PORT + i))" --timeout 300
    echo "[replica-$i] ready"
done
echo "cluster $ETHERCATTLE_CLUSTER is up; logs in $DATADIR/*.log; new replicas: ethercattle snapshot restore --from $DATADIR/snapshots. Ctrl-C stops it."
while true; do sleep 3600; done
