#!/usr/bin/env bash
# The two commands of the README.
#   deploy/dev.sh up     everything locally: broker, dev master, replica, emitter
#   deploy/dev.sh test   the whole test suite (unit first, then the real-broker suites)
# Both install what they need first: a virtualenv in .venv with the project and its
# pinned dependencies (and, for tests, the Debian packages the tests drive).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv

bootstrap() {
    local stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
    if [[ ! -f "$stamp" ]]; then
        [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --upgrade pip
        "$VENV/bin/pip" install --quiet -e ".[test]"
        touch "$stamp"
    fi
}

debian_packages() {
    # Packages the end-to-end tests drive: a browser for the status page, a load
    # balancer, and a load generator. Installed only where missing.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        if [[ $(id -u) -eq 0 ]]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "note: Debian packages ${missing[*]} are missing (run as root to install); tests that need them will fail" >&2
        fi
    fi
}

case "${1:-}" in
    up)
        bootstrap
        shift
        exec "$VENV/bin/ethercattle" up "$@"
        ;;
    test)
        bootstrap
        shift
        debian_packages chromium fonts-dejavu-core haproxy ${ETHERCATTLE_TEST_DEBIAN_PACKAGES:-}
        "$VENV/bin/python" -m pytest -m "not broker" -q -p no:cacheprovider "$@"
        "$VENV/bin/python" -m pytest -m "broker" -q -p no:cacheprovider "$@"
        ;;
    *)
        echo "usage: deploy/dev.sh up|test [args]" >&2
        exit 2
        ;;
esac
