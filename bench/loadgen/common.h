// What the two bench binaries (vs_loadgen, vs_native) share: CPU time and the query file.
#pragma once

#include <sys/resource.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

// CPU seconds (user + system) this process has used.
inline double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// The query vectors of a raw float32 file of `dim`-float rows, row after row; throws
// std::runtime_error with the reason when the file is missing, empty or not whole rows.
inline std::vector<float> read_queries(const std::string& path, int dim) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot read " + path);
  const auto bytes = static_cast<size_t>(in.tellg());
  const size_t row = sizeof(float) * static_cast<size_t>(dim);
  if (bytes == 0 || bytes % row != 0)
    throw std::runtime_error("query file size is not a multiple of dim floats: " + path);
  std::vector<float> data(bytes / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(bytes));
  return data;
}
