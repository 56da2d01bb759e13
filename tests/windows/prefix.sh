#!/usr/bin/env bash
# Makes (or reuses) a Wine prefix for uspslink's Windows tests: `tests/windows/prefix.sh DIR`.
# A prefix is made once (wineboot, about 10 s) and gets the TEST-ONLY bcryptprimitives.dll shim in its
# system32: Wine 8 lacks that DLL, and every Rust program built for Windows imports ProcessPrng from
# it. The shim lives only in test prefixes; the installer never carries it.
set -euo pipefail
prefix=${1:?usage: prefix.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" # no Mono/Gecko prompts
shim=$prefix/drive_c/windows/system32/bcryptprimitives.dll
if [ ! -f "$prefix/system.reg" ]; then
  mkdir -p "$prefix"
  wineboot --init >/dev/null 2>&1
  wineserver --wait
fi
if [ ! -f "$shim" ] || [ "$here/bcryptprimitives.c" -nt "$shim" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$shim" "$here/bcryptprimitives.c" "$here/bcryptprimitives.def" -ladvapi32
fi
