// Closed-loop load generator for vector-search's Search RPC, in C++.
//
// Why: a Python gRPC client spends about as much CPU per call as the Python server does, and on
// a 2-core machine it shares those cores with the server, so a Python load generator measures
// itself as much as the service. This one keeps `--concurrency` Search calls in flight on one
// channel from a single thread driving a completion queue (tens of microseconds of CPU per
// call), cycling through the query vectors in a raw float32 file, and prints one JSON line:
// requests, errors, seconds, QPS, p50/p99 latency and the CPU seconds this process used.
//
//   vs_loadgen --target 127.0.0.1:50051 --index bench/stores --queries q.f32 --dim 384 \
//              --concurrency 8 --requests 2000 [--warmup 100] [--k 10] [--token T]

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "fashionrec/vectorsearch/v1/vector_search.grpc.pb.h"

namespace pb = fashionrec::vectorsearch::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target = "127.0.0.1:50051";
  std::string index;
  std::string queries;
  std::string token;
  int dim = 0;
  int k = 10;
  int concurrency = 8;
  long requests = 1000;
  long warmup = 0;
};

struct Call {
  grpc::ClientContext ctx;
  pb::SearchResponse reply;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::SearchResponse>> reader;
  Clock::time_point start;
};

[[noreturn]] static void usage(const char* why) {
  std::fprintf(stderr,
               "vs_loadgen: %s\nusage: vs_loadgen --index NAME --queries FILE.f32 --dim D "
               "[--target HOST:PORT] [--k 10] [--concurrency 8] [--requests 1000] "
               "[--warmup 0] [--token T]\n",
               why);
  std::exit(2);
}

static Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("help");
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    std::string value = argv[++i];
    if (flag == "--target") o.target = value;
    else if (flag == "--index") o.index = value;
    else if (flag == "--queries") o.queries = value;
    else if (flag == "--token") o.token = value;
    else if (flag == "--dim") o.dim = std::stoi(value);
    else if (flag == "--k") o.k = std::stoi(value);
    else if (flag == "--concurrency") o.concurrency = std::stoi(value);
    else if (flag == "--requests") o.requests = std::stol(value);
    else if (flag == "--warmup") o.warmup = std::stol(value);
    else usage(("unknown flag " + flag).c_str());
  }
  if (o.index.empty() || o.queries.empty() || o.dim <= 0) usage("--index, --queries, --dim needed");
  if (o.concurrency < 1 || o.requests < 1) usage("--concurrency and --requests must be >= 1");
  return o;
}

static std::vector<pb::SearchRequest> load_requests(const Options& o) {
  std::vector<float> data;
  try {
    data = read_queries(o.queries, o.dim);
  } catch (const std::runtime_error& e) {
    usage(e.what());
  }
  std::vector<pb::SearchRequest> out(data.size() / static_cast<size_t>(o.dim));
  for (size_t q = 0; q < out.size(); ++q) {
    out[q].set_index(o.index);
    out[q].set_k(static_cast<uint32_t>(o.k));
    auto* values = out[q].mutable_query()->mutable_vector()->mutable_values();
    values->Add(data.begin() + static_cast<long>(q * o.dim),
                data.begin() + static_cast<long>((q + 1) * o.dim));
  }
  return out;
}

// Runs `total` calls with `concurrency` in flight; returns per-call latencies (s) and errors.
static std::vector<double> drive(pb::VectorSearch::Stub& stub, const Options& o,
                                 const std::vector<pb::SearchRequest>& reqs, long total,
                                 long* errors, std::string* first_error) {
  grpc::CompletionQueue cq;
  std::vector<double> lat;
  lat.reserve(static_cast<size_t>(total));
  long issued = 0;
  long done = 0;
  auto issue = [&]() {
    auto* call = new Call;
    if (!o.token.empty()) call->ctx.AddMetadata("authorization", "Bearer " + o.token);
    call->start = Clock::now();
    call->reader = stub.PrepareAsyncSearch(&call->ctx, reqs[issued % reqs.size()], &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->reply, &call->status, call);
    ++issued;
  };
  for (int i = 0; i < o.concurrency && issued < total; ++i) issue();
  void* tag = nullptr;
  bool ok = false;
  while (done < total && cq.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    lat.push_back(std::chrono::duration<double>(Clock::now() - call->start).count());
    if (!ok || !call->status.ok()) {
      if (*errors == 0) *first_error = call->status.error_message();
      ++*errors;
    }
    ++done;
    if (issued < total) issue();
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return lat;
}

static double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto pos = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(pos, v.size() - 1)];
}

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto reqs = load_requests(o);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  auto channel = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
  auto stub = pb::VectorSearch::NewStub(channel);
  long errors = 0;
  std::string first_error;
  if (o.warmup > 0) drive(*stub, o, reqs, o.warmup, &errors, &first_error);
  errors = 0;
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  const auto lat = drive(*stub, o, reqs, o.requests, &errors, &first_error);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "{\"requests\": %zu, \"errors\": %ld, \"seconds\": %.4f, \"qps\": %.1f, "
      "\"p50_ms\": %.3f, \"p99_ms\": %.3f, \"client_cpu_s\": %.4f, \"concurrency\": %d",
      lat.size(), errors, secs, static_cast<double>(lat.size()) / secs,
      percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3, cpu, o.concurrency);
  if (errors > 0) {
    std::string escaped;
    for (char c : first_error) {
      if (c == '"' || c == '\\') escaped += '\\';
      if (static_cast<unsigned char>(c) >= 0x20) escaped += c;
    }
    std::printf(", \"first_error\": \"%s\"", escaped.c_str());
  }
  std::printf("}\n");
  return errors > 0 ? 1 : 0;
}
