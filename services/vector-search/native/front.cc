// vector-search's native Search front: a C++ gRPC server that owns the service's public port,
// answers plain vector Search calls from the live FAISS index without Python, and forwards
// every other call (and every Search it does not answer) to the Python grpcio server behind it
// (a Unix socket in a private directory), byte for byte.
//
// Why (issue 17): a Python gRPC handler with nothing behind it costs more CPU per call than an
// HNSW search at 100k on these cores, so Search QPS at concurrency 8 stayed at 0.16-0.34x of
// in-process FAISS; this front measured 0.7-1.0x (docs/benchmarks.md).
//
// What Python keeps: every write, the WAL, snapshots, errors. Python tells this library, under
// each index's write lock, which FAISS object (and search parameters) to search, each label's
// hit record (id and metadata, see IndexState) and the generation; the lock itself lives here
// so a native search and a Python writer exclude each other. A Search is answered natively only on
// the happy path (known index, vector query of the index's dimension, no filters, no search
// params, k within the index's efSearch, a full result, the bearer token valid, the read lock
// free at once); anything else goes to Python, which gives the canonical answer or error.
//
// The C API at the bottom is what vector_search/native/front.py loads with ctypes.

#include <dlfcn.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fashionrec/vectorsearch/v1/vector_search.pb.h"

// FAISS as the service runs it: the faiss-cpu wheel's own libfaiss.so, already loaded by
// `import faiss`. The wheel ships no headers, so the one function used is declared with the
// signature its exported name spells (`nm -D libfaiss.so`):
//   _ZNK5faiss18IndexIDMapTemplateINS_5IndexEE6searchElPKflPfPlPKNS_16SearchParametersE
// Every index Python hands over is a faiss.IndexIDMap (Flat or HNSW inside), its SWIG `this`.
namespace faiss {
struct Index;
struct SearchParameters;
template <typename IndexT>
struct IndexIDMapTemplate {
  void search(long n, const float* x, long k, float* distances, long* labels,
              const SearchParameters* params) const;
};
}  // namespace faiss
using IdMap = faiss::IndexIDMapTemplate<faiss::Index>;
namespace pb = fashionrec::vectorsearch::v1;

namespace {

constexpr char kSearch[] = "/fashionrec.vectorsearch.v1.VectorSearch/Search";
constexpr int kSlots = 16;  // calls kept requested per serving thread

// vector_search/index/rwlock.py's lock, moved here so native searches take it too.
class RWLock {
 public:
  void read() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return can_read(); });
    ++readers_;
  }
  bool try_read() {
    std::lock_guard<std::mutex> l(mu_);
    if (!can_read()) return false;
    ++readers_;
    return true;
  }
  void read_long() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return !writer_ && !waiting_writers_; });
    ++readers_;
    ++long_readers_;
  }
  void release_read(bool is_long) {
    std::lock_guard<std::mutex> l(mu_);
    --readers_;
    long_readers_ -= is_long ? 1 : 0;
    if (!readers_) cv_.notify_all();
  }
  void write() {
    std::unique_lock<std::mutex> l(mu_);
    ++waiting_writers_;
    cv_.wait(l, [&] { return !writer_ && !readers_; });
    --waiting_writers_;
    writer_ = true;
  }
  void release_write() {
    std::lock_guard<std::mutex> l(mu_);
    writer_ = false;
    cv_.notify_all();
  }

 private:
  // Writers go first, except past a long reader (a snapshot), as in rwlock.py.
  bool can_read() const { return !writer_ && !(waiting_writers_ && !long_readers_); }
  std::mutex mu_;
  std::condition_variable cv_;
  int readers_ = 0, long_readers_ = 0, waiting_writers_ = 0;
  bool writer_ = false;
};

// One index as native searches see it; every field but `lock` changes under its write lock.
struct IndexState {
  RWLock lock;
  const IdMap* engine = nullptr;  // null: answer nothing natively (Python decides)
  const faiss::SearchParameters* params = nullptr;
  int dim = 0;
  bool ip = false;
  int max_k = 0;  // largest k answered natively (HNSW: its efSearch)
  uint64_t generation = 0;
  int64_t count = 0;
  // Each label's hit as a record in `arena`: varint id length, id, then per metadata entry
  // varint key id (into `keys`), varint value length, value. spans[label] = offset << 24 |
  // length (0: none). About 120 B per item where the Hit message itself is 185: keys are
  // written once, and one arena has no per-string overhead. Overwrites leave garbage, which
  // is compacted away once it is half the arena.
  std::vector<std::string> keys;
  std::string arena;
  std::vector<uint64_t> spans;
  uint64_t garbage = 0;
};

float score(float d, bool ip) {  // collection.py's _score
  const float s = ip ? (d + 1.0f) / 2.0f : 1.0f - d / 4.0f;
  return s < 0.0f ? 0.0f : (s > 1.0f ? 1.0f : s);
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_fixed32(std::string& out, char tag, float f) {
  out.push_back(tag);
  char bytes[4];
  std::memcpy(bytes, &f, 4);  // little-endian, as protobuf's fixed32
  out.append(bytes, 4);
}

bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == y;
         });
}

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

bool get_varint(const char*& p, const char* end, uint64_t* v) {
  *v = 0;
  for (int shift = 0; p < end && shift < 64; shift += 7) {
    const auto byte = static_cast<unsigned char>(*p++);
    *v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// One length-delimited field: tag, length, bytes.
void put_bytes(std::string& out, char tag, const char* data, size_t len) {
  out.push_back(tag);
  put_varint(out, len);
  out.append(data, len);
}

// SearchResponse.hits entry for the record at `span`: Hit{id, distance, score, metadata}.
// Two passes over the record: the Hit's size first (its length prefix), then its bytes.
bool append_hit(std::string& out, const IndexState& st, uint64_t span, float d, float s) {
  const char* begin = st.arena.data() + (span >> 24);
  const char* end = begin + (span & 0xffffff);
  for (int pass = 0; pass < 2; ++pass) {
    const char* p = begin;
    uint64_t id_len = 0, size = 10;  // distance and score: tag + 4 bytes each
    if (!get_varint(p, end, &id_len) || id_len > static_cast<uint64_t>(end - p)) return false;
    const char* id = p;
    p += id_len;
    size += 1 + varint_size(id_len) + id_len;
    if (pass == 1) put_bytes(out, 0x0a, id, id_len);  // Hit.id
    while (p < end) {
      uint64_t key = 0, len = 0;
      if (!get_varint(p, end, &key) || key >= st.keys.size() || !get_varint(p, end, &len) ||
          len > static_cast<uint64_t>(end - p))
        return false;
      const std::string& name = st.keys[key];
      const uint64_t entry = 1 + varint_size(name.size()) + name.size() + 1 + varint_size(len) + len;
      size += 1 + varint_size(entry) + entry;
      if (pass == 1) {  // Hit.metadata: a map entry {1: key, 2: value}
        out.push_back(0x22);
        put_varint(out, entry);
        put_bytes(out, 0x0a, name.data(), name.size());
        put_bytes(out, 0x12, p, len);
      }
      p += len;
    }
    if (pass == 0) {
      out.push_back(0x0a);  // SearchResponse.hits
      put_varint(out, size);
    }
  }
  put_fixed32(out, 0x15, d);  // Hit.distance
  put_fixed32(out, 0x1d, s);  // Hit.score
  return true;
}

class Front;

// One call on the generic service: a native Search, or a proxy to the Python server.
class Call {
 public:
  enum Op {
    kNew, kDone, kSRead, kSWrite, kSFinish, kUStart, kURead, kUWrite, kUWritesDone, kUFinish, kOps
  };
  explicit Call(Front* f);
  void on_event(Op op, bool ok);

  struct Tag {
    Call* call;
    Op op;
  };
  Tag tags[kOps];
  grpc::GenericServerContext sctx;
  grpc::GenericServerAsyncReaderWriter stream{&sctx};

 private:
  void handle(Op op, bool ok);
  void start_proxy(bool have_first);
  void finish(const grpc::Status& status);
  void* tag(Op op) {
    ++pending_;
    return &tags[op];
  }
  Front* f_;
  std::mutex mu_;
  int pending_ = 1;  // the kNew completion
  bool search_ = false, have_first_ = false;
  bool up_done_ = false, finishing_ = false, finished_ = false;
  grpc::ByteBuffer in_, out_;
  grpc::ClientContext cctx_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> up_;
  grpc::Status ustatus_;
};

class Front {
 public:
  std::string start(const std::string& addr, const std::string& backend, int threads,
                    const std::string& tokens, const std::string& cert, const std::string& key,
                    const std::string& ca, int max_k);
  void stop(double grace_s);

  std::shared_ptr<IndexState> find(const std::string& name) {
    std::lock_guard<std::mutex> l(map_mu_);
    auto it = indexes_.find(name);
    return it == indexes_.end() ? nullptr : it->second;
  }
  IndexState* add(const std::string& name) {
    auto state = std::make_shared<IndexState>();
    std::lock_guard<std::mutex> l(map_mu_);
    indexes_[name] = state;
    return state.get();
  }
  void remove(IndexState* state) {
    std::lock_guard<std::mutex> l(map_mu_);
    for (auto it = indexes_.begin(); it != indexes_.end(); ++it)
      if (it->second.get() == state) {
        indexes_.erase(it);
        return;
      }
  }
  bool authorized(const grpc::ServerContext& ctx) const;
  bool answer(const grpc::GenericServerContext& ctx, const grpc::ByteBuffer& in,
              grpc::ByteBuffer* out);
  void request_call();

  // Starting an operation after the completion queue shut down is fatal: handlers hold this
  // shared while they may start one, stop() exclusively while it shuts the queue down.
  std::shared_mutex ops_mu;
  bool cq_closed = false;
  std::atomic<bool> stopping{false};
  grpc::AsyncGenericService service;
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  std::unique_ptr<grpc::GenericStub> stub;
  std::atomic<uint64_t> native{0}, forwarded{0};
  int port = 0;

 private:
  std::mutex map_mu_;
  std::unordered_map<std::string, std::shared_ptr<IndexState>> indexes_;
  std::vector<std::string> tokens_;
  int max_k_ = 1000;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::thread> threads_;
};

Call::Call(Front* f) : f_(f) {
  for (int i = 0; i < kOps; ++i) tags[i] = {this, static_cast<Op>(i)};
}

void Call::on_event(Op op, bool ok) {
  bool done;
  {
    std::shared_lock<std::shared_mutex> ops(f_->ops_mu);
    std::lock_guard<std::mutex> l(mu_);
    --pending_;
    if (!f_->cq_closed) handle(op, ok);
    done = pending_ == 0 && (finished_ || f_->cq_closed || (op == kNew && !ok));
  }
  if (done) delete this;
}

void Call::finish(const grpc::Status& status) {
  finishing_ = true;
  stream.Finish(status, tag(kSFinish));
}

void Call::handle(Op op, bool ok) {
  switch (op) {
    case kNew:
      if (!ok) return;  // the server is shutting down: never started
      ++pending_;  // a started call always delivers its kDone
      if (!f_->stopping) f_->request_call();
      if (sctx.method() == kSearch) {
        search_ = true;
        stream.Read(&in_, tag(kSRead));
      } else {
        start_proxy(false);
      }
      return;
    case kSRead:
      if (search_) {  // the one request message of a Search
        search_ = false;
        if (!ok) return finish({grpc::StatusCode::CANCELLED, "no request message"});
        if (f_->answer(sctx, in_, &out_)) {
          f_->native++;
          finishing_ = true;
          stream.WriteAndFinish(out_, grpc::WriteOptions(), grpc::Status::OK, tag(kSFinish));
          return;
        }
        return start_proxy(true);
      }
      if (up_done_) return;
      if (ok) up_->Write(in_, tag(kUWrite));
      else up_->WritesDone(tag(kUWritesDone));  // the client half-closed
      return;
    case kUStart:
      if (!ok) {  // no backend: Finish gives the reason
        up_->Finish(&ustatus_, tag(kUFinish));
        return;
      }
      up_->Read(&out_, tag(kURead));
      if (have_first_) up_->Write(in_, tag(kUWrite));
      else stream.Read(&in_, tag(kSRead));
      return;
    case kUWrite:
      if (ok && !up_done_ && !finishing_) stream.Read(&in_, tag(kSRead));
      return;
    case kUWritesDone:
      return;
    case kURead:
      if (ok && !finishing_) {
        stream.Write(out_, tag(kSWrite));
      } else {
        up_->Finish(&ustatus_, tag(kUFinish));
      }
      return;
    case kSWrite:
      if (ok) {
        up_->Read(&out_, tag(kURead));
      } else {  // the client is gone: cancel upstream, which ends the call
        cctx_.TryCancel();
        up_->Finish(&ustatus_, tag(kUFinish));
      }
      return;
    case kUFinish:
      up_done_ = true;
      for (const auto& [k, v] : cctx_.GetServerTrailingMetadata()) {
        const std::string key(k.data(), k.size());
        if (key.rfind("grpc-", 0) != 0) sctx.AddTrailingMetadata(key, std::string(v.data(), v.size()));
      }
      if (!finishing_) finish(ustatus_);
      return;
    case kSFinish:
      finished_ = true;
      return;
    case kDone:  // the call ended; cancelled (client gone, server shutdown): cancel upstream
      if (sctx.IsCancelled() && up_ && !up_done_) cctx_.TryCancel();  // a proxied call
      return;
    default:
      return;
  }
}

void Call::start_proxy(bool have_first) {
  f_->forwarded++;
  have_first_ = have_first;
  for (const auto& [k, v] : sctx.client_metadata()) {
    const std::string key(k.data(), k.size());
    if (key.empty() || key[0] == ':' || key.rfind("grpc-", 0) == 0 || key == "user-agent" ||
        key == "content-type" || key == "te")
      continue;
    cctx_.AddMetadata(key, std::string(v.data(), v.size()));
  }
  cctx_.set_deadline(sctx.deadline());
  up_ = f_->stub->PrepareCall(&cctx_, sctx.method(), f_->cq.get());
  up_->StartCall(tag(kUStart));
}

void Front::request_call() {
  auto* call = new Call(this);
  call->sctx.AsyncNotifyWhenDone(&call->tags[Call::kDone]);
  service.RequestCall(&call->sctx, &call->stream, cq.get(), cq.get(), &call->tags[Call::kNew]);
}

bool Front::authorized(const grpc::ServerContext& ctx) const {
  if (tokens_.empty()) return true;
  const auto& md = ctx.client_metadata();
  const auto it = md.find("authorization");
  if (it == md.end()) return false;
  const std::string_view header(it->second.data(), it->second.size());
  const size_t space = header.find(' ');
  if (space == std::string_view::npos || !ieq(header.substr(0, space), "bearer")) return false;
  const std::string_view presented = header.substr(space + 1);
  unsigned matched = 0;  // every token compared, no early exit (as grpc_auth.py)
  for (const auto& token : tokens_) {
    unsigned diff = presented.size() != token.size();
    for (size_t i = 0; i < token.size(); ++i)
      diff |= static_cast<unsigned char>(token[i]) ^
              static_cast<unsigned char>(i < presented.size() ? presented[i] : 0);
    matched |= diff == 0;
  }
  return matched != 0;
}

bool Front::answer(const grpc::GenericServerContext& ctx, const grpc::ByteBuffer& in,
                   grpc::ByteBuffer* out) {
  if (!authorized(ctx) || ctx.deadline() <= std::chrono::system_clock::now()) return false;
  grpc::Slice slice;
  if (!in.TrySingleSlice(&slice).ok() && !in.DumpToSingleSlice(&slice).ok()) return false;
  pb::SearchRequest req;
  if (!req.ParseFromArray(slice.begin(), static_cast<int>(slice.size()))) return false;
  if (!req.query().has_vector() || req.filters_size() || req.has_params()) return false;
  auto state = find(req.index());
  if (!state) return false;
  const int k = req.k() ? static_cast<int>(req.k()) : 10;
  if (!state->lock.try_read()) return false;  // a writer holds or waits: Python queues
  struct Unlock {
    RWLock& lock;
    ~Unlock() { lock.release_read(false); }
  } unlock{state->lock};
  const auto& values = req.query().vector().values();
  if (!state->engine || values.size() != state->dim || k > state->max_k || k > max_k_ ||
      state->count == 0)
    return false;
  std::vector<float> dist(k);
  std::vector<long> labels(k);
  state->engine->search(1, values.data(), k, dist.data(), labels.data(), state->params);
  const int64_t want = std::min<int64_t>(k, state->count);
  if (std::count_if(labels.begin(), labels.end(), [](long l) { return l >= 0; }) < want)
    return false;  // short: Python widens the search, then falls back to exact
  std::string reply;
  reply.reserve(static_cast<size_t>(k) * 96);
  for (int i = 0; i < k; ++i) {
    const long label = labels[i];
    if (label < 0 || static_cast<size_t>(label) >= state->spans.size()) continue;
    const uint64_t span = state->spans[label];
    if (span == 0) continue;
    if (!append_hit(reply, *state, span, dist[i], score(dist[i], state->ip))) return false;
  }
  if (state->generation) {
    reply.push_back(0x10);  // SearchResponse.generation
    put_varint(reply, state->generation);
  }
  grpc::Slice out_slice(reply);
  *out = grpc::ByteBuffer(&out_slice, 1);
  return true;
}

std::string Front::start(const std::string& addr, const std::string& backend, int threads,
                         const std::string& tokens, const std::string& cert,
                         const std::string& key, const std::string& ca, int max_k) {
  max_k_ = max_k;
  for (size_t pos = 0; pos < tokens.size();) {
    const size_t end = std::min(tokens.find('\n', pos), tokens.size());
    if (end > pos) tokens_.push_back(tokens.substr(pos, end - pos));
    pos = end + 1;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  stub = std::make_unique<grpc::GenericStub>(
      grpc::CreateCustomChannel(backend, grpc::InsecureChannelCredentials(), args));
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!cert.empty()) {
    grpc::SslServerCredentialsOptions ssl(
        ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = ca;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    creds = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(addr, creds, &port);
  builder.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  builder.SetMaxSendMessageSize(64 * 1024 * 1024);
  builder.RegisterAsyncGenericService(&service);
  cq = builder.AddCompletionQueue();
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) return "cannot listen on " + addr;
  const int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 0; i < kSlots * n; ++i) request_call();
  // OpenMP as the Python search threads have it: one thread per query, no team.
  using SetThreads = void (*)(int);
  auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  for (int t = 0; t < n; ++t)
    threads_.emplace_back([this, set_threads] {
      if (set_threads) set_threads(1);
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) {
        auto* t = static_cast<Call::Tag*>(tag);
        t->call->on_event(t->op, ok);
      }
    });
  return "";
}

void Front::stop(double grace_s) {
  if (!cq) return;  // never served, or stopped already
  stopping = true;
  if (server_)
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(static_cast<long>(grace_s * 1000)));
  {
    std::unique_lock<std::shared_mutex> l(ops_mu);
    cq_closed = true;
    cq->Shutdown();
  }
  for (auto& t : threads_) t.join();
  if (threads_.empty()) {  // start failed before any thread ran: drain here
    void* tag = nullptr;
    bool ok = false;
    while (cq->Next(&tag, &ok)) {
    }
  }
  threads_.clear();
  server_.reset();
  cq.reset();
}

}  // namespace

// ---- C API for ctypes (vector_search/native/front.py); everything else stays hidden ----
#define API __attribute__((visibility("default")))
extern "C" {

API void* vsf_new() { return new Front; }

// Serve on `addr` (TLS when cert is non-empty), forwarding to `backend`; the bound port, or 0
// with the reason in err.
API int vsf_serve(void* f, const char* addr, const char* backend, int threads,
                  const char* tokens, const char* cert, const char* key, const char* ca,
                  int max_k, char* err, int err_len) {
  auto* front = static_cast<Front*>(f);
  const std::string why = front->start(addr, backend, threads, tokens, cert, key, ca, max_k);
  if (why.empty()) return front->port;
  std::snprintf(err, static_cast<size_t>(err_len), "%s", why.c_str());
  return 0;
}

// Stop serving: new calls refused, calls in flight given grace_s to finish. Idempotent.
API void vsf_stop(void* f, double grace_s) { static_cast<Front*>(f)->stop(grace_s); }

API void vsf_free(void* f) {
  static_cast<Front*>(f)->stop(0);
  delete static_cast<Front*>(f);
}

API void vsf_stats(void* f, uint64_t* out) {
  out[0] = static_cast<Front*>(f)->native.load();
  out[1] = static_cast<Front*>(f)->forwarded.load();
}

API void* vsf_index_add(void* f, const char* name) { return static_cast<Front*>(f)->add(name); }

// The caller holds the index's write lock: no native search is inside it.
API void vsf_index_remove(void* f, void* s) {
  static_cast<IndexState*>(s)->engine = nullptr;
  static_cast<Front*>(f)->remove(static_cast<IndexState*>(s));
}

API void vsf_lock_read(void* s) { static_cast<IndexState*>(s)->lock.read(); }
API void vsf_lock_read_long(void* s) { static_cast<IndexState*>(s)->lock.read_long(); }
API void vsf_unlock_read(void* s, int is_long) {
  static_cast<IndexState*>(s)->lock.release_read(is_long != 0);
}
API void vsf_lock_write(void* s) { static_cast<IndexState*>(s)->lock.write(); }
API void vsf_unlock_write(void* s) { static_cast<IndexState*>(s)->lock.release_write(); }

// Under the write lock: what to search (engine null: nothing natively) and the index's state.
API void vsf_index_set(void* s, void* engine, void* params, int dim, int ip, int max_k,
                   uint64_t generation, int64_t count) {
  auto* st = static_cast<IndexState*>(s);
  st->engine = static_cast<const IdMap*>(engine);
  st->params = static_cast<const faiss::SearchParameters*>(params);
  st->dim = dim;
  st->ip = ip != 0;
  st->max_k = max_k;
  st->generation = generation;
  st->count = count;
}

// Under the write lock: metadata key `id` is `name` (ids are the mirror's, never reused).
API void vsf_index_key(void* s, int64_t id, const char* name) {
  auto& keys = static_cast<IndexState*>(s)->keys;
  if (static_cast<size_t>(id) >= keys.size()) keys.resize(static_cast<size_t>(id) + 1);
  keys[static_cast<size_t>(id)] = name;
}

static void drop_span(IndexState* st, size_t label) {
  if (label < st->spans.size() && st->spans[label]) {
    st->garbage += st->spans[label] & 0xffffff;
    st->spans[label] = 0;
  }
}

// Rewrite the arena with live records only, once overwrites and deletes left half of it dead.
static void maybe_compact(IndexState* st) {
  if (st->garbage < (1u << 20) || st->garbage * 2 < st->arena.size()) return;
  std::string arena;
  arena.reserve(st->arena.size() - st->garbage);
  for (auto& span : st->spans) {
    if (!span) continue;
    const uint64_t len = span & 0xffffff;
    const uint64_t off = arena.size();
    arena.append(st->arena, span >> 24, len);
    span = off << 24 | len;
  }
  st->arena.swap(arena);
  st->garbage = 0;
}

// Under the write lock: labels[i]'s record is blob[offsets[i]:offsets[i+1]] (under 16 MiB).
API void vsf_index_put(void* s, int64_t n, const int64_t* labels, const char* blob,
                       const int64_t* offsets) {
  auto* st = static_cast<IndexState*>(s);
  for (int64_t i = 0; i < n; ++i) {
    const auto label = static_cast<size_t>(labels[i]);
    if (label >= st->spans.size()) st->spans.resize(std::max(label + 1, st->spans.size() * 2));
    drop_span(st, label);
    const auto len = static_cast<uint64_t>(offsets[i + 1] - offsets[i]);
    const uint64_t off = st->arena.size();
    st->arena.append(blob + offsets[i], len);
    st->spans[label] = off << 24 | len;
  }
  maybe_compact(st);
}

API void vsf_index_clear(void* s, int64_t n, const int64_t* labels) {
  auto* st = static_cast<IndexState*>(s);
  for (int64_t i = 0; i < n; ++i) drop_span(st, static_cast<size_t>(labels[i]));
  maybe_compact(st);
}

// Resident bytes of the hit records (arena and spans), O(1).
API uint64_t vsf_index_bytes(void* s) {
  const auto* st = static_cast<IndexState*>(s);
  return st->arena.capacity() + st->spans.capacity() * sizeof(uint64_t);
}

}  // extern "C"
