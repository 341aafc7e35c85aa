#!/usr/bin/env bash
# Enforces the layering the folders promise: each layer includes only the
# layers below it, the bus core is pure logic (no OS, no Xen, no other
# layer), and only ring/ touches atomics. Prints each
# violation and exits 1 if there is any.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
violation() {
    echo "layering: $1" >&2
    status=1
}

core_files=$(git ls-files 'backend/core/*.cpp' 'backend/core/*.hpp')
for f in $core_files; do
    while IFS= read -r line; do
        violation "$f includes $line (the core has no I/O, threads, Xen or other layers)"
    done < <(grep -hoE '#include <(sys/[^>]*|unistd\.h|fcntl\.h|pthread\.h|thread|mutex|atomic|xen[^>]*|xkbus/(ring|xenstore|frontend|limpet)/[^>]*|iostream|fstream|cstdio)>' "$f")
done

# Every layer, and the layers it may include (as <xkbus/...> paths). The
# first folder that matches a file is its layer; tests, bench and tools may
# include anything. docs/architecture.md draws the same picture.
RING_CORE='ring/[a-z_]+\.hpp'
LAYERS=(
    "common/|common/"
    "backend/core/|common/ core/"
    "ring/protocol/|common/ protocol/"
    "ring/socket/|common/ socket/"
    "ring/local/|common/ $RING_CORE ring/local/"
    "ring/xen/|common/ $RING_CORE ring/xen/"
    "ring/link/|common/ protocol/ $RING_CORE"
    "ring/|common/ $RING_CORE"
    "xenstore/|common/ xenstore/"
    "backend/daemon/|common/ core/ daemon/ protocol/ ring/ socket/ xenstore/"
    "frontend/connection/|common/ frontend/ protocol/ ring/ socket/ xenstore/"
    "frontend/device/|common/ kbus kbus\.h compat/"
    "frontend/cli/|common/ frontend/ ksock kbus xenstore/"
    "frontend/|common/ frontend/ protocol/ kbus ksock compat/"
    "limpet/|common/ frontend/ ksock kbus limpet/"
)

layer_of() {
    local entry
    for entry in "${LAYERS[@]}"; do
        if [[ "$1" == "${entry%%|*}"* ]]; then
            echo "$entry"
            return
        fi
    done
}

for f in $(git ls-files '*.cpp' '*.hpp' '*.h' '*.c' | grep -vE '^(tests|bench|tools)/'); do
    entry="$(layer_of "$f")"
    [ -n "$entry" ] || continue
    allowed="^($(echo "${entry#*|}" | sed 's/ /|/g'))"
    while IFS= read -r target; do
        if ! [[ "$target" =~ $allowed ]]; then
            violation "$f (${entry%%|*}) includes <xkbus/$target>, which its layer may not use"
        fi
    done < <(grep -hoE '#include <xkbus/[^>]+>' "$f" | sed -E 's/#include <xkbus\/(.*)>/\1/')
done

for f in $(git ls-files '*.cpp' '*.hpp' | grep -vE '^(ring|tests|bench)/'); do
    if grep -qE '#include <atomic>|std::atomic' "$f"; then
        violation "$f uses atomics outside ring/ (shared-memory ordering lives in ring/ only)"
    fi
done
exit $status
