#!/usr/bin/env bash
# Checks that every Mermaid diagram of README.md and deploy/docs/*.md parses,
# with the Mermaid library itself (mermaid.parse under Node, a jsdom window
# standing in for the browser: no Chromium needed). Run from anywhere:
#   bash deploy/docs/check-diagrams.sh [file.md...]
# Installs what it lacks: Node.js/npm from Debian when missing, then the two
# npm packages (pinned) into deploy/docs/.tools (ignored by git; override with
# MERMAID_TOOLS_DIR). The names the diagrams use are checked separately, by
# `cargo xtask check` (.ci/xtask).
set -euo pipefail
cd "$(dirname "$0")/../.."

MERMAID_VERSION=11.17.2
JSDOM_VERSION=26.1.0
tools="${MERMAID_TOOLS_DIR:-deploy/docs/.tools}"
case "$tools" in /*) ;; *) tools="$PWD/$tools" ;; esac

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

installed() {
    node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
        "$tools/node_modules/$1/package.json" "$2" 2>/dev/null
}
if ! installed mermaid "$MERMAID_VERSION" || ! installed jsdom "$JSDOM_VERSION"; then
    echo "installing mermaid@$MERMAID_VERSION and jsdom@$JSDOM_VERSION into $tools"
    mkdir -p "$tools"
    [ -f "$tools/package.json" ] || echo '{"private": true}' >"$tools/package.json"
    npm install --prefix "$tools" --no-audit --no-fund --loglevel=error \
        "mermaid@$MERMAID_VERSION" "jsdom@$JSDOM_VERSION" >/dev/null
fi

if [ "$#" -eq 0 ]; then
    set -- README.md deploy/docs/*.md
fi
node deploy/docs/check-diagrams.mjs "$tools" "$@"
