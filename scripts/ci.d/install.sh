#!/usr/bin/env bash
# CI step for the install: a Release build installed into a temporary prefix,
# then consumers built only from what was installed -- with pkg-config (shared
# and --static) and with CMake's find_package (mproc::mproc and
# mproc::mproc_static). Each consumer runs a pool map and a shared dict and
# must print the expected result.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
jobs=$(nproc)

cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DMPROC_BUILD_TESTS=OFF \
  -DMPROC_BUILD_EXAMPLES=OFF -DMPROC_BUILD_BENCH=OFF \
  -DMPROC_BUILD_FUZZ=OFF >/dev/null
cmake --build "$work/build" -j "$jobs" >/dev/null
cmake --install "$work/build" >/dev/null

# The installed tree is moved before use: the .pc file and the CMake package
# must not depend on the prefix given at configure time.
mv "$prefix" "$work/moved"
prefix=$work/moved

mkdir -p "$work/app"
cat >"$work/app/app.c" <<'EOF'
#include <mproc.h>
#include <stdio.h>

static int square(const void *in, size_t n, void *out, mproc_task_ctx *ctx) {
  (void)n;
  (void)ctx;
  *(long *)out = *(const long *)in * *(const long *)in;
  return 0;
}

int main(void) {
  mproc_pool_t *pool;
  int rc = mproc_pool_create(&pool, &(mproc_pool_opts){.processes = 2});
  if (rc != 0) {
    fprintf(stderr, "pool_create: %d\n", rc);
    return 1;
  }
  long in[6], out[6];
  for (long i = 0; i < 6; i++) in[i] = i + 1;
  rc = mproc_pool_map(pool, square, in, 6, sizeof(long), out, sizeof(long), NULL);
  mproc_pool_destroy(pool);
  if (rc != 0) {
    fprintf(stderr, "pool_map: %d\n", rc);
    return 1;
  }
  // The sum goes through a shared dict: its SipHash is libsodium's, so a
  // static link without -lsodium fails here.
  long sum = 0, got = 0;
  for (int i = 0; i < 6; i++) sum += out[i];
  mproc_dict_t *d;
  size_t len;
  if ((rc = mproc_dict_create(&d, NULL)) != 0 ||
      (rc = mproc_dict_set(d, "sum", 3, &sum, sizeof sum)) != 0 ||
      (rc = mproc_dict_get(d, "sum", 3, &got, sizeof got, &len)) != 0) {
    fprintf(stderr, "dict: %d\n", rc);
    return 1;
  }
  mproc_dict_destroy(d);
  for (int i = 0; i < 6; i++) printf("%ld ", out[i]);
  printf("sum=%ld\n", got);
  return 0;
}
EOF
want="1 4 9 16 25 36 sum=91"

check() { # name, program [, LD_LIBRARY_PATH]
  local got
  got=$(LD_LIBRARY_PATH=${3:-} "$2")
  if [ "$got" != "$want" ]; then
    echo "install.sh: $1 printed '$got', want '$want'" >&2
    exit 1
  fi
  echo "install.sh: $1 ok"
}

pcdir=$(dirname "$(find "$prefix" -name mproc.pc -print -quit)")
libdir=$(dirname "$pcdir")
export PKG_CONFIG_PATH=$pcdir
cc=${CC:-cc}
# shellcheck disable=SC2046  # pkg-config output is a list of flags
"$cc" -o "$work/app/pc_shared" "$work/app/app.c" $(pkg-config --cflags --libs mproc)
check "pkg-config shared" "$work/app/pc_shared" "$libdir"
# --static gives the private dependencies too; -l:libmproc.a makes the linker
# take the archive although the .so sits next to it.
static_flags=$(pkg-config --static --cflags --libs mproc | sed 's/-lmproc\b/-l:libmproc.a/')
# shellcheck disable=SC2086
"$cc" -o "$work/app/pc_static" "$work/app/app.c" $static_flags
if ldd "$work/app/pc_static" | grep -q libmproc; then
  echo "install.sh: pc_static links libmproc dynamically" >&2
  exit 1
fi
check "pkg-config static" "$work/app/pc_static"

cat >"$work/app/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(mproc_consumer LANGUAGES C)
find_package(mproc REQUIRED)
add_executable(app_shared app.c)
target_link_libraries(app_shared PRIVATE mproc::mproc)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE mproc::mproc_static)
EOF
# A clean PKG_CONFIG_PATH: the package must find its own dependencies.
env -u PKG_CONFIG_PATH cmake -S "$work/app" -B "$work/app/build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/app/build" -j "$jobs" >/dev/null
if ldd "$work/app/build/app_static" | grep -q libmproc; then
  echo "install.sh: app_static links libmproc dynamically" >&2
  exit 1
fi
check "find_package mproc::mproc" "$work/app/build/app_shared" "$libdir"
check "find_package mproc::mproc_static" "$work/app/build/app_static"
echo "install.sh: installed package works"
