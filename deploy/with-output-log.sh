#!/bin/bash
#
# with-output-log COMMAND [ARG...]
#
# Run one otelzmq host and keep a copy of its standard output in
# $OTELZMQ_OUT/output/$OTELZMQ_HOST_NAME/output.log, as the original
# system's `script` wrapper did. Standard output still reaches the console
# (docker logs), standard error is left alone, and the command's exit
# status becomes ours. SIGTERM and SIGINT are passed on to the command so
# `docker stop` lets the host shut down cleanly.
#
# When OTELZMQ_HOST_NAME is not set (a service scaled with --scale), the
# container's host name is used and exported, so the trace folder and the
# log folder share that name.

set -u

if [ "$#" -lt 1 ]; then
    echo "usage: with-output-log COMMAND [ARG...]" >&2
    exit 2
fi

export OTELZMQ_HOST_NAME="${OTELZMQ_HOST_NAME:-${HOSTNAME:-$(hostname)}}"
log_dir="${OTELZMQ_OUT:-out}/output/${OTELZMQ_HOST_NAME}"
if ! mkdir -p -- "$log_dir"; then
    echo "with-output-log: cannot create $log_dir" >&2
    exit 1
fi

"$@" > >(tee -- "$log_dir/output.log") &
child=$!

trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT

# `wait` returns early when a trapped signal arrives; keep waiting until the
# command has really exited.
while :; do
    wait "$child"
    status=$?
    if ! kill -0 "$child" 2>/dev/null; then
        break
    fi
done

# Let tee write what is left in the pipe before we exit.
wait
exit "$status"
