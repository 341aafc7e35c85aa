#!/usr/bin/env bash
# Enforces the layering the folders promise: the bus core is pure logic (no
# OS, no Xen, no other layer), and only ring/ touches atomics. Prints each
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

for f in $(git ls-files '*.cpp' '*.hpp' | grep -vE '^(ring|tests|bench)/'); do
    if grep -qE '#include <atomic>|std::atomic' "$f"; then
        violation "$f uses atomics outside ring/ (shared-memory ordering lives in ring/ only)"
    fi
done
exit $status
