#!/usr/bin/env bash
# Build the C++ Search load generator into var/loadgen/vs_loadgen (ignored, rebuilt on demand).
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
