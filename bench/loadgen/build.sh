#!/usr/bin/env bash
# Build the C++ Search load generator into var/loadgen/vs_loadgen (ignored, rebuilt on demand),
# and the native Search front var/loadgen/vs_native (against .venv's faiss-cpu, or FAISS_LIB_DIR).
# Needs gRPC C++ and protoc with the gRPC plugin: on Debian/Ubuntu
#   apt-get install libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${1:-$root/var/loadgen}"
mkdir -p "$out/gen"
plugin="$(command -v grpc_cpp_plugin || true)"
if [[ -z "$plugin" ]] || ! pkg-config --exists grpc++ protobuf; then
  echo "vs_loadgen needs gRPC C++: apt-get install libgrpc++-dev protobuf-compiler-grpc" \
       "libprotobuf-dev protobuf-compiler" >&2
  exit 3
fi
proto=fashionrec/vectorsearch/v1/vector_search.proto
protoc -I "$root/proto" --cpp_out="$out/gen" --grpc_out="$out/gen" \
  --plugin=protoc-gen-grpc="$plugin" "$root/proto/$proto"
# shellcheck disable=SC2046
g++ -O2 -std=c++17 -I "$out/gen" -o "$out/vs_loadgen" "$root/bench/loadgen/vs_loadgen.cc" \
  "$out/gen/fashionrec/vectorsearch/v1/vector_search.pb.cc" \
  "$out/gen/fashionrec/vectorsearch/v1/vector_search.grpc.pb.cc" \
  $(pkg-config --cflags --libs grpc++ protobuf) -lpthread
echo "$out/vs_loadgen"
# vs_native links the faiss-cpu wheel's own libfaiss.so (the build the service runs).
faiss_dir="${FAISS_LIB_DIR:-$("$root/.venv/bin/python" -c 'import faiss, os; print(os.path.dirname(faiss.__file__))' 2>/dev/null || true)}"
if [[ -n "$faiss_dir" && -f "$faiss_dir/libfaiss.so" ]]; then
  # shellcheck disable=SC2046
  g++ -O2 -std=c++17 -I "$out/gen" -o "$out/vs_native" "$root/bench/loadgen/vs_native.cc" \
    "$out/gen/fashionrec/vectorsearch/v1/vector_search.pb.cc" \
    "$out/gen/fashionrec/vectorsearch/v1/vector_search.grpc.pb.cc" \
    $(pkg-config --cflags --libs grpc++ protobuf) -L "$faiss_dir" -lfaiss \
    -Wl,-rpath,"$faiss_dir",-rpath-link,"$faiss_dir/../faiss_cpu.libs" -lpthread
  echo "$out/vs_native"
else
  echo "vs_native not built: no libfaiss.so from the faiss-cpu wheel (make install)" >&2
fi
