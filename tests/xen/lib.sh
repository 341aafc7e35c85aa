# Shared helpers of the host-side harness scripts (sourced, not run).
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this file
XEN_CACHE="${XKBUS_XEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xkbus-xen}"
# shellcheck disable=SC2034
XENLIB_DIR=/usr/lib/xen-4.17

xlog() { printf '\033[1m[test-xen]\033[0m %s\n' "$*" >&2; }
xdie() {
    xlog "error: $*"
    exit 1
}

# copy_elf ROOT FILE [DEST]: FILE (an ELF program or library) into ROOT at
# DEST (default: the same path), with every shared library ldd names.
copy_elf() {
    local root="$1" file="$2" dest="${3:-$2}" lib
    mkdir -p "$root/$(dirname "$dest")"
    cp -L "$file" "$root/$dest"
    # Debug info would triple the initramfs, which lives in the domU's 256 MB.
    strip --strip-debug "$root/$dest" 2>/dev/null || true
    while read -r lib; do
        [ -e "$root/$lib" ] && continue
        mkdir -p "$root/$(dirname "$lib")"
        cp -L "$lib" "$root/$lib"
    done < <(ldd "$file" 2>/dev/null | grep -oE '/[^ ]+' || true)
}

# pack_cpio DIR OUT [plain]: DIR as a newc initramfs archive, gzipped unless
# "plain" (archives that are concatenated before one compression).
pack_cpio() {
    local dir="$1" out="$2" filter=(gzip -6)
    [ "${3:-}" = plain ] && filter=(cat)
    (cd "$dir" && find . -print0 | LC_ALL=C sort -z | cpio -o -0 -H newc --quiet --owner=0:0) |
        "${filter[@]}" >"$out.tmp"
    mv "$out.tmp" "$out"
}
