#!/usr/bin/env bash
# Install the Debian command-line mail clients the real-client tests use (curl, fetchmail,
# swaks, mbsync from isync), if they are missing.  Runs before the tox test env (commands_pre).
#
# It never fails the run: without root, apt-get or network access it only says what it
# could not install, and the tests that need a missing tool skip with a clear reason.
# Set A3MAIL_NO_TOOL_INSTALL=1 to never install anything.

# Each entry is a command, or command:package when the Debian package is named otherwise.
TOOLS="curl fetchmail swaks mbsync:isync"

missing=""
commands=""
for entry in $TOOLS; do
    tool="${entry%%:*}"
    command -v "$tool" >/dev/null 2>&1 && continue
    missing="$missing ${entry#*:}"
    commands="$commands $tool"
done
missing="${missing# }"
[ -z "$missing" ] && exit 0

reason=""
if [ -n "${A3MAIL_NO_TOOL_INSTALL:-}" ]; then
    reason="A3MAIL_NO_TOOL_INSTALL is set"
elif [ "$(id -u)" != "0" ]; then
    reason="not running as root"
elif ! command -v apt-get >/dev/null 2>&1; then
    reason="apt-get is not available"
fi

if [ -z "$reason" ]; then
    echo "ensure-tools: installing $missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 300 apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
        # The package lists may be missing or stale: refresh them once and retry.
        timeout 300 apt-get update >/dev/null 2>&1
        timeout 300 apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 \
            || reason="apt-get install failed (no network or no package lists?)"
    fi
fi

still=""
for tool in $commands; do
    command -v "$tool" >/dev/null 2>&1 || still="$still $tool"
done
if [ -n "$still" ]; then
    echo "ensure-tools: could not install${still} (${reason:-unknown reason});" \
        "the tests that need them will be skipped" >&2
fi
exit 0
