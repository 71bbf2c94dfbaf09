#!/usr/bin/env bash
# Build vector-search's native Search front (native/front.cc) into
# src/vector_search/native/libvsfront.so.0 (ignored; `make install` runs this).
# Needs gRPC C++ and protoc (Debian: libgrpc++-dev libprotobuf-dev protobuf-compiler) and the
# faiss-cpu wheel in .venv (FAISS_LIB_DIR overrides). Without them it builds nothing, says
# why, and exits 0: the service then runs its pure-Python path and logs that it does.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="$here/../src/vector_search/native/libvsfront.so.0"
python="${PYTHON:-$root/.venv/bin/python}"
if ! command -v protoc >/dev/null || ! pkg-config --exists grpc++ protobuf; then
  echo "native front not built: needs libgrpc++-dev libprotobuf-dev protobuf-compiler" \
       "(make system-deps installs them); vector-search runs pure Python" >&2
  exit 0
fi
faiss_dir="${FAISS_LIB_DIR:-$("$python" -c 'import faiss, os; print(os.path.dirname(faiss.__file__))' 2>/dev/null || true)}"
if [[ -z "$faiss_dir" || ! -f "$faiss_dir/libfaiss.so" ]]; then
  echo "native front not built: no libfaiss.so from the faiss-cpu wheel (make install)" >&2
  exit 0
fi
gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
protoc -I "$root/proto" --cpp_out="$gen" "$root/proto/fashionrec/vectorsearch/v1/vector_search.proto"
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -shared -fPIC -fvisibility=hidden -Wall -Wextra -I "$gen" -o "$out.tmp" \
  "$here/front.cc" "$gen/fashionrec/vectorsearch/v1/vector_search.pb.cc" \
  $(pkg-config --cflags --libs grpc++ protobuf) -L "$faiss_dir" -lfaiss \
  -Wl,-rpath,"$faiss_dir",-rpath-link,"$faiss_dir/../faiss_cpu.libs" -lpthread -ldl
mv "$out.tmp" "$out"
echo "native front: $out"
