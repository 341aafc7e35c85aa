#!/usr/bin/env bash
# Runs the shell blocks of README.md and docs/*.md that are marked runnable,
# so the commands the documentation shows stay true. A block is runnable
# when the line before its ```sh fence is
#     <!-- doc-test -->
# and may be followed by lines that its output must match (grep -E):
#     <!-- doc-test expect: REGEX -->
# Each block runs with bash -e in a fresh folder where `build` is the build
# tree under test and `./run` runs the project's task runner (but `./run
# test`, which is what runs this check, only says so; `./run demo` runs the
# demo of the build under test). /tmp/xkbus.sock in
# a block becomes a socket of its own, so runs in parallel cannot meet. What
# a block leaves running is killed when it ends.
#   tools/doc-test.sh BUILD_DIR [FILE.md...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:?usage: $0 BUILD_DIR [FILE.md...]}" && pwd)"
shift
files=("$@")
[ "${#files[@]}" -gt 0 ] || files=("$root/README.md" "$root"/docs/*.md)

work="$(mktemp -d /tmp/xkbus-doc-test-XXXXXX)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# The blocks of one file, each as: "<line> <expect-file> <script-file>".
extract() {
    awk -v dir="$work" -v base="$(basename "$1")" '
        /^<!-- doc-test -->$/ { marked = NR; n++; expect = dir "/" base "." n ".expect"; printf "" > expect; next }
        /^<!-- doc-test expect: .* -->$/ && marked {
            line = $0; sub(/^<!-- doc-test expect: /, "", line); sub(/ -->$/, "", line)
            print line >> expect; next }
        /^```(sh|bash)$/ && marked { inblock = 1; script = dir "/" base "." n ".sh"; start = NR
                                     printf "" > script; next }
        /^```$/ && inblock { inblock = 0; marked = 0; print start, expect, script; next }
        inblock { print >> script }
    ' "$1"
}

run_block() {
    local file="$1" line="$2" expect="$3" script="$4"
    local dir="$work/run-$(basename "$script" .sh)"
    mkdir -p "$dir"
    ln -s "$build" "$dir/build"
    cat >"$dir/run" <<SHIM
#!/usr/bin/env bash
# ./run for a documentation block, on the build under test: demo runs the
# demo that ./run demo builds and runs; test is the suite running this check.
case "\${1:-}" in
demo) exec "$build/tools/xkbus-demo" ;;
test) echo "(./run test: the suite that runs this check)" ;;
*) exec "$root/run" "\$@" ;;
esac
SHIM
    chmod +x "$dir/run"
    sed -i "s#/tmp/xkbus\.sock#$dir/xkbus.sock#g" "$script"
    local status=0 session
    # Its own session, so everything it starts in the background can be
    # killed with it; stdin closed, as in CI.
    (cd "$dir" && exec setsid bash -e "$script" </dev/null >"$dir/out" 2>&1) &
    session=$!
    wait "$session" || status=$?
    pkill -KILL -s "$session" 2>/dev/null || true
    local why=""
    [ "$status" -eq 0 ] || why="exit status $status"
    while IFS= read -r pattern; do
        [ -z "$pattern" ] || grep -Eq -- "$pattern" "$dir/out" || why="${why:+$why; }no output matches /$pattern/"
    done <"$expect"
    if [ -z "$why" ]; then
        passed=$((passed + 1))
        echo "ok   ${file#"$root"/}:$line"
    else
        failed=$((failed + 1))
        echo "FAIL ${file#"$root"/}:$line: $why"
        sed 's/^/    | /' "$dir/out"
    fi
}

for file in "${files[@]}"; do
    while read -r line expect script; do
        run_block "$file" "$line" "$expect" "$script"
    done < <(extract "$file")
done
echo "doc-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
