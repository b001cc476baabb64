#!/usr/bin/env bash
# Install everything the tests need, then run them.
#
#   bash scripts/test.sh [pytest arguments]
#
# Debian packages (babeltrace2, LTTng, Prometheus, docker-compose, iproute2)
# are installed when missing and this runs as root; the Python packages go
# into .venv unless a virtual environment is already active. Tests that need
# a tool that is still missing are skipped with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES=(
    babeltrace2          # reads our CTF traces in the tests
    lttng-tools          # records a real LTTng-UST session to compare with
    liblttng-ust-dev     # builds the tracepoint provider for that session
    gcc                  # compiles it
    prometheus           # scrapes live host metrics; promtool checks configs
    docker-compose       # validates docker-compose.yml without an engine
    iproute2             # network namespaces for the multi-host run
    openssl              # certificates for the replay's TLS test
    shellcheck           # lints the deployment scripts
    python3-venv         # the virtual environment below, on Debian's Python
)

missing=()
for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
        || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        echo "Installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        echo "Not root or no apt-get: tests needing ${missing[*]} will be skipped"
    fi
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -m pip install -q -e '.[test]'

exec python -m pytest -ra "$@"
