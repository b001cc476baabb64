#!/bin/bash
#
# netns-run.sh: run the otelzmq topology as separate hosts on one machine.
#
# Every host (proxy, server-1.., client-1..) runs in its own network
# namespace with its own address on a private /24. The namespaces are wired
# to one bridge that itself lives in a further, private "switch" namespace,
# so nothing is added to the machine's own network stack: no address, no
# route, no interface. Traffic between hosts crosses real veth links and the
# hosts see each other's real addresses, as containers or machines would.
#
# Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2. Everything the
# script creates carries a per-run suffix, so several runs can go at once,
# and is removed on exit, whether the run succeeded, failed or was
# interrupted.
#
# Output, as `otelzmq up` lays it out:
#   OUT/ctf-traces/<host>/...        each host's CTF recording
#   OUT/output/<host>/output.log     each host's standard output
#   OUT/output/<host>/stderr.log     each host's diagnostics
#   OUT/hosts.tsv                    host, address, namespace (one per line)
#
# Exit status: 0 when every host exited with 0, 1 when one did not or the
# run timed out, 2 for bad arguments, 3 when namespaces cannot be created.

set -euo pipefail

usage() {
    cat <<'EOF'
usage: netns-run.sh [options]

  --out DIR          where traces and logs go (default: out)
  --clients N        number of clients (default: 3)
  --servers N        number of servers (default: 2)
  --workers N        worker threads per server (default: 2)
  --requests K       requests per client (default: 10)
  --subnet A.B.C     private /24 used inside the namespaces (default: 10.77.0)
  --timeout SECONDS  give up on the run after this long (default: 120)
  --otelzmq COMMAND  how to start otelzmq (default: otelzmq; e.g.
                     "python3 -m otelzmq")
  --id ID            prefix of this run's namespace names (default: random;
                     lower-case letters and digits, at most 12)
  -h, --help         show this help

Extra host options can be passed after `--`; they go to every host.
EOF
}

die() {
    echo "netns-run: $1" >&2
    exit "${2:-2}"
}

positive() {
    [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 expects a positive integer, got '$2'"
}

out=out
clients=3
servers=2
workers=2
requests=10
subnet=10.77.0
timeout=120
otelzmq_command=otelzmq
run_id="oz$$$(printf '%04x' "$RANDOM")"
extra=()

while [ "$#" -gt 0 ]; do
    case "$1" in
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --clients) positive "$1" "${2:-}"; clients=$2; shift 2 ;;
    --servers) positive "$1" "${2:-}"; servers=$2; shift 2 ;;
    --workers) positive "$1" "${2:-}"; workers=$2; shift 2 ;;
    --requests) positive "$1" "${2:-}"; requests=$2; shift 2 ;;
    --timeout) positive "$1" "${2:-}"; timeout=$2; shift 2 ;;
    --subnet) subnet=${2:?--subnet needs a value}; shift 2 ;;
    --otelzmq) otelzmq_command=${2:?--otelzmq needs a value}; shift 2 ;;
    --id) run_id=${2:?--id needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) usage >&2; die "unknown argument '$1'" ;;
    esac
done

# Only RFC 1918 networks: the addresses never leave the namespaces, but a
# public prefix there would still shadow real hosts for the processes inside.
private='^(10\.[0-9]{1,3}|172\.(1[6-9]|2[0-9]|3[01])|192\.168)\.[0-9]{1,3}$'
if ! [[ "$subnet" =~ $private ]]; then
    die "--subnet must be the first three octets of a private network, e.g. 10.77.0"
fi
for octet in ${subnet//./ }; do
    [ "$octet" -le 255 ] || die "--subnet has an octet above 255: $subnet"
done
[ "$servers" -le 79 ] || die "at most 79 servers fit the address plan"
[ "$clients" -le 150 ] || die "at most 150 clients fit the address plan"
[[ "$run_id" =~ ^[a-z0-9]{1,12}$ ]] \
    || die "--id must be 1-12 lower-case letters or digits"
read -r -a otelzmq <<<"$otelzmq_command"
[ "${#otelzmq[@]}" -gt 0 ] || die "--otelzmq must not be empty"
command -v ip >/dev/null || die "iproute2 (the ip command) is not installed" 3

# Address plan: proxy .10, servers .21.., clients .101..
hosts=(proxy)
declare -A address=([proxy]="$subnet.10")
for ((i = 1; i <= servers; i++)); do
    hosts+=("server-$i")
    address[server-$i]="$subnet.$((20 + i))"
done
for ((i = 1; i <= clients; i++)); do
    hosts+=("client-$i")
    address[client-$i]="$subnet.$((100 + i))"
done

switch="$run_id-switch"
declare -A namespace=()
declare -A pid=()
created=()

# Called through the EXIT trap only.
# shellcheck disable=SC2317
cleanup() {
    local status=$? name
    trap - EXIT HUP INT TERM
    # Keep going whatever fails here (stderr may be gone, a host may already
    # have exited): everything below must run.
    set +e
    for name in "${!pid[@]}"; do
        if kill -0 "${pid[$name]}" 2>/dev/null; then
            echo "netns-run: stopping $name" >&2
            kill -TERM "${pid[$name]}" 2>/dev/null || true
        fi
    done
    for name in "${!pid[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "${pid[$name]}" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "${pid[$name]}" 2>/dev/null || true
        wait "${pid[$name]}" 2>/dev/null || true
    done
    # Deleting a namespace deletes the interfaces inside it: the veths and
    # the bridge go with their namespaces.
    for name in "${created[@]}"; do
        ip netns delete "$name" 2>/dev/null \
            || echo "netns-run: could not delete namespace $name" >&2
    done
    exit "$status"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
# A closed stderr (the caller went away) must not kill the script before it
# cleans up: writes then fail with an error instead.
trap '' PIPE

in_ns() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@"
}

# The switch: a namespace holding only a bridge.
if ! ip netns add "$switch" 2>/dev/null; then
    die "cannot create network namespaces (needs root or CAP_SYS_ADMIN)" 3
fi
created+=("$switch")
in_ns "$switch" ip link add br0 type bridge
in_ns "$switch" ip link set br0 up

# One namespace per host, linked to the switch by a veth pair.
index=0
for host in "${hosts[@]}"; do
    index=$((index + 1))
    ns="$run_id-$host"
    ip netns add "$ns"
    created+=("$ns")
    namespace[$host]=$ns
    in_ns "$switch" ip link add "p$index" type veth peer name eth0 netns "$ns"
    in_ns "$switch" ip link set "p$index" master br0 up
    in_ns "$ns" ip link set lo up
    in_ns "$ns" ip addr add "${address[$host]}/24" dev eth0
    in_ns "$ns" ip link set eth0 up
done

mkdir -p "$out/output"
: >"$out/hosts.tsv"
for host in "${hosts[@]}"; do
    mkdir -p "$out/output/$host"
    printf '%s\t%s\t%s\n' "$host" "${address[$host]}" "${namespace[$host]}" \
        >>"$out/hosts.tsv"
done

start_host() {
    local host=$1 role=$2
    shift 2
    # A plain command, not a function: `$!` is then the host process itself
    # (ip netns exec replaces itself with it), so signals reach the host.
    ip netns exec "${namespace[$host]}" "${otelzmq[@]}" "$role" \
        --name "$host" --out "$out" "$@" "${extra[@]}" \
        >"$out/output/$host/output.log" 2>"$out/output/$host/stderr.log" &
    pid[$host]=$!
    echo "netns-run: started $host at ${address[$host]} (pid ${pid[$host]})" >&2
}

# Wait until a TCP port accepts connections in a namespace, or give up.
port_ready() {
    local ns=$1 port=$2
    in_ns "$ns" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .
}

# True once a namespace has an established TCP connection to a remote port.
connected() {
    local ns=$1 port=$2
    in_ns "$ns" ss -Htn state established "( dport = :$port )" 2>/dev/null \
        | grep -q .
}

deadline=$((SECONDS + timeout))

start_host proxy proxy --bind "${address[proxy]}" --expect-clients "$clients"
for port in 5559 5560 5561 5562; do
    until port_ready "${namespace[proxy]}" "$port"; do
        kill -0 "${pid[proxy]}" 2>/dev/null || die "the proxy exited before \
listening; see $out/output/proxy/stderr.log" 1
        [ "$SECONDS" -lt "$deadline" ] || die "the proxy did not listen on $port" 1
        sleep 0.1
    done
done

for ((i = 1; i <= servers; i++)); do
    start_host "server-$i" server --proxy-host "${address[proxy]}" --workers "$workers"
done

# Clients start once every server holds its connections to the proxy's
# backend and terminator: a server that joined after the clients finished
# would miss the proxy's KILL and never stop.
for ((i = 1; i <= servers; i++)); do
    for port in 5560 5562; do
        until connected "${namespace[server-$i]}" "$port"; do
            kill -0 "${pid[server-$i]}" 2>/dev/null \
                || die "server-$i exited early; see $out/output/server-$i/stderr.log" 1
            [ "$SECONDS" -lt "$deadline" ] \
                || die "server-$i did not connect to the proxy's port $port" 1
            sleep 0.1
        done
    done
done

for ((i = 1; i <= clients; i++)); do
    start_host "client-$i" client --proxy-host "${address[proxy]}" \
        --requests "$requests"
done

# Clients finish first; the proxy follows once all have said goodbye and
# then tells the servers to stop. Wait for everyone, within the deadline.
failed=0
order=()
for ((i = 1; i <= clients; i++)); do order+=("client-$i"); done
order+=(proxy)
for ((i = 1; i <= servers; i++)); do order+=("server-$i"); done
for host in "${order[@]}"; do
    while kill -0 "${pid[$host]}" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "netns-run: $host still running after ${timeout}s" >&2
            exit 1
        fi
        sleep 0.1
    done
    status=0
    wait "${pid[$host]}" || status=$?
    unset "pid[$host]"
    if [ "$status" -ne 0 ]; then
        echo "netns-run: $host exited with status $status" \
            "(see $out/output/$host/stderr.log)" >&2
        failed=1
    fi
done

if [ "$failed" -eq 0 ]; then
    echo "netns-run: all ${#hosts[@]} hosts finished; output in $out" >&2
fi
exit "$failed"
