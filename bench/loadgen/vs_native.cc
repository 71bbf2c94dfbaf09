// A native Search front for vector-search, for measurement only (issue 17's c8 QPS point).
//
// Why: bench_vs_rpc.py shows that an *empty* Python gRPC handler already costs more CPU per call
// than an HNSW search at 100k on these cores. Before building a native search path into the
// service, this answers what one would reach: a C++ gRPC server (async API, the bearer token
// checked per call as the service's interceptor does) whose Search runs FAISS's HNSW search
// and builds the reply without Python. Two more modes separate the parts:
//
//   vs_native --serve --port P --token T [--threads N] (--index-file F --dim D [--metric IP]
//             | --empty)
//       serve Search on 127.0.0.1:P; --empty answers 10 fixed hits without searching (the
//       floor of any C++ gRPC server here); otherwise searches F (faiss.write_index output)
//       with one thread per core, each answering its calls inline; hit ids are the FAISS
//       labels as decimal strings.
//   vs_native --inprocess --index-file F --queries Q.f32 --dim D [--concurrency 8]
//             [--requests 4000] [--k 10]
//       the same library searched from `concurrency` threads in this process: the baseline the
//       native server is compared against, without gRPC.
//
// Both print one JSON line (serve: once listening) so bench_vs_rpc.py can read them.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "fashionrec/vectorsearch/v1/vector_search.grpc.pb.h"

// FAISS as the service runs it: the faiss-cpu wheel's own libfaiss.so (1.15.1), so the search
// costs the same here as in the service and in-process. The wheel exports its C++ API but ships
// no headers (and Debian's libfaiss-dev is 1.7.3, another ABI and a build without AVX2 that
// searches several times slower), so the two functions used are declared here with exactly
// the signatures their exported names spell (`nm -D libfaiss.so`):
//   _ZN5faiss10read_indexEPKci                                   faiss::read_index
//   _ZNK5faiss9IndexHNSW6searchElPKflPfPlPKNS_16SearchParametersE  faiss::IndexHNSW::search
// IndexHNSWFlat derives from IndexHNSW alone (single inheritance), so the pointer read_index
// returns is the IndexHNSW; load() checks the file's fourcc so nothing else gets here.
namespace faiss {
struct Index;
struct SearchParameters;
Index* read_index(const char* fname, int io_flags);
struct IndexHNSW {
  void search(long n, const float* x, long k, float* distances, long* labels,
              const SearchParameters* params) const;
};
}  // namespace faiss

namespace pb = fashionrec::vectorsearch::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  bool serve = false;
  bool inprocess = false;
  bool empty = false;
  int port = 0;
  std::string token;
  std::string index_file;
  std::string queries;
  std::string metric = "L2";  // the index's, for the score: L2 or IP
  int dim = 0;
  int k = 10;
  int concurrency = 8;
  int threads = 0;  // serving threads; 0: one per core
  long requests = 4000;
};

[[noreturn]] static void usage(const char* why) {
  std::fprintf(stderr,
               "vs_native: %s\nusage: vs_native --serve --port P [--token T] [--threads cores] "
               "(--index-file F --dim D [--metric L2|IP] | --empty)\n"
               "       vs_native --inprocess --index-file F --queries Q.f32 --dim D "
               "[--concurrency 8] [--requests 4000] [--k 10]\n",
               why);
  std::exit(2);
}

static Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("help");
    if (flag == "--serve") { o.serve = true; continue; }
    if (flag == "--inprocess") { o.inprocess = true; continue; }
    if (flag == "--empty") { o.empty = true; continue; }
    if (i + 1 >= argc) usage(("missing value for " + flag).c_str());
    std::string value = argv[++i];
    if (flag == "--port") o.port = std::stoi(value);
    else if (flag == "--token") o.token = value;
    else if (flag == "--index-file") o.index_file = value;
    else if (flag == "--queries") o.queries = value;
    else if (flag == "--metric") o.metric = value;
    else if (flag == "--dim") o.dim = std::stoi(value);
    else if (flag == "--k") o.k = std::stoi(value);
    else if (flag == "--concurrency") o.concurrency = std::stoi(value);
    else if (flag == "--threads") o.threads = std::stoi(value);
    else if (flag == "--requests") o.requests = std::stol(value);
    else usage(("unknown flag " + flag).c_str());
  }
  if (o.serve == o.inprocess) usage("exactly one of --serve, --inprocess");
  if (o.metric != "L2" && o.metric != "IP") usage("--metric is L2 or IP");
  if (o.serve && (o.port <= 0 || (!o.empty && (o.index_file.empty() || o.dim <= 0))))
    usage("--serve needs --port and --index-file with --dim (or --empty)");
  if (o.inprocess && (o.index_file.empty() || o.queries.empty() || o.dim <= 0))
    usage("--inprocess needs --index-file, --queries, --dim");
  return o;
}

static float score(float d, bool ip) {  // the service's score, for unit vectors
  const float s = ip ? (d + 1.0f) / 2.0f : 1.0f - d / 4.0f;
  return s < 0.0f ? 0.0f : (s > 1.0f ? 1.0f : s);
}

// What Search answers; shared by every serving thread (FAISS's search is const and thread-safe).
class Searcher {
 public:
  Searcher(const faiss::IndexHNSW* index, int dim, bool ip, std::string token)
      : index_(index), dim_(dim), ip_(ip), bearer_("Bearer " + std::move(token)) {}

  grpc::Status answer(grpc::ServerContext* ctx, const pb::SearchRequest* req,
                      pb::SearchResponse* reply) const {
    const auto& md = ctx->client_metadata();
    const auto auth = md.find("authorization");
    if (bearer_.size() > 7 &&  // "Bearer " alone: started without --token, no check
        (auth == md.end() || std::string(auth->second.data(), auth->second.size()) != bearer_))
      return {grpc::StatusCode::UNAUTHENTICATED, "missing or wrong bearer token"};
    reply->set_generation(1);
    if (!index_) {  // --empty: the same reply the Python empty handler gives
      for (int i = 0; i < 10; ++i) {
        auto* hit = reply->add_hits();
        hit->set_id(std::to_string(i));
        hit->set_distance(0.5f);
        hit->set_score(0.75f);
      }
      return grpc::Status::OK;
    }
    if (!req->query().has_vector() || req->query().vector().values_size() != dim_)
      return {grpc::StatusCode::INVALID_ARGUMENT, "query vector of the index's dimension needed"};
    const int k = req->k() == 0 ? 10 : static_cast<int>(req->k());
    if (k > 1000) return {grpc::StatusCode::INVALID_ARGUMENT, "k at most 1000"};
    std::vector<float> dist(k);
    std::vector<long> labels(k);
    index_->search(1, req->query().vector().values().data(), k, dist.data(), labels.data(),
                   nullptr);  // n = 1: FAISS opens no OpenMP team, one core per call
    for (int i = 0; i < k; ++i) {
      if (labels[i] < 0) break;
      auto* hit = reply->add_hits();
      hit->set_id(std::to_string(labels[i]));
      hit->set_distance(dist[i]);
      hit->set_score(score(dist[i], ip_));
    }
    return grpc::Status::OK;
  }

 private:
  const faiss::IndexHNSW* index_;  // null: --empty
  int dim_;
  bool ip_;
  std::string bearer_;
};

// The index in `path`, which must be an IndexHNSWFlat ("IHNf"); lives as long as the process.
static const faiss::IndexHNSW* load(const std::string& path) {
  char fourcc[4] = {};
  std::ifstream(path, std::ios::binary).read(fourcc, 4);
  if (std::string(fourcc, 4) != "IHNf") usage(("not an IndexHNSWFlat file: " + path).c_str());
  return reinterpret_cast<const faiss::IndexHNSW*>(faiss::read_index(path.c_str(), 0));
}

// One Search call in flight on a completion queue: requested, then answered, then freed.
struct Pending {
  grpc::ServerContext ctx;
  pb::SearchRequest req;
  grpc::ServerAsyncResponseWriter<pb::SearchResponse> writer{&ctx};
  bool answered = false;
};

// Async server, one thread per core polling one completion queue, each answering the calls it
// takes inline: no hand-off between threads per call (a thread wake-up is costly on these VMs),
// no more runnable threads than cores. `kSlots` calls per thread stay requested.
static int serve(const Options& o) {
  constexpr int kSlots = 16;
  const faiss::IndexHNSW* index = o.empty ? nullptr : load(o.index_file);
  const Searcher searcher(index, o.dim, o.metric == "IP", o.token);
  pb::VectorSearch::AsyncService service;
  grpc::ServerBuilder builder;
  const std::string addr = "127.0.0.1:" + std::to_string(o.port);
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  builder.RegisterService(&service);
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  // One queue that every thread polls: with a queue per thread, gRPC hands the calls of a
  // connection to the queue of the thread that read them, so one thread got nearly all of them.
  const auto cq = builder.AddCompletionQueue();
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "vs_native: cannot listen on %s\n", addr.c_str());
    return 1;
  }
  auto request = [&service](grpc::ServerCompletionQueue* cq) {
    auto* call = new Pending;
    service.RequestSearch(&call->ctx, &call->req, &call->writer, cq, cq, call);
  };
  auto loop = [&](grpc::ServerCompletionQueue* cq) {
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
      auto* call = static_cast<Pending*>(tag);
      if (!ok || call->answered) {  // reply sent, or the server is shutting down
        delete call;
        continue;
      }
      request(cq);  // a new call arrived: keep kSlots requested
      pb::SearchResponse reply;
      const grpc::Status status = searcher.answer(&call->ctx, &call->req, &reply);
      call->answered = true;
      if (status.ok()) call->writer.Finish(reply, status, call);
      else call->writer.FinishWithError(status, call);
    }
  };
  std::printf("{\"listening\": \"%s\", \"empty\": %s, \"threads\": %d}\n", addr.c_str(),
              o.empty ? "true" : "false", threads);
  std::fflush(stdout);
  for (int i = 0; i < kSlots * threads; ++i) request(cq.get());
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back(loop, cq.get());
  server->Wait();
  return 0;
}

static int inprocess(const Options& o) {
  const faiss::IndexHNSW* index = load(o.index_file);
  std::vector<float> xq;
  try {
    xq = read_queries(o.queries, o.dim);
  } catch (const std::runtime_error& e) {
    usage(e.what());
  }
  const size_t nq = xq.size() / static_cast<size_t>(o.dim);
  std::atomic<long> next{0};
  long limit = 0;
  auto worker = [&]() {
    std::vector<float> dist(o.k);
    std::vector<long> labels(o.k);
    for (long i = next++; i < limit; i = next++) {
      index->search(1, xq.data() + (i % static_cast<long>(nq)) * o.dim, o.k, dist.data(),
                    labels.data(), nullptr);
    }
  };
  auto run = [&](long calls) {
    next = 0;
    limit = calls;
    std::vector<std::thread> threads;
    for (int t = 0; t < o.concurrency; ++t) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  };
  run(o.requests / 10);  // warm-up: touch the graph's pages before timing
  const double cpu0 = cpu_seconds();
  const auto t0 = Clock::now();
  run(o.requests);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("{\"requests\": %ld, \"seconds\": %.4f, \"qps\": %.1f, \"cpu_s\": %.4f}\n",
              o.requests, secs, static_cast<double>(o.requests) / secs, cpu_seconds() - cpu0);
  return 0;
}

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  return o.serve ? serve(o) : inprocess(o);
}
