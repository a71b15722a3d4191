// c10d's collectives for JavaScript: a TCPStore (the rendezvous), a Gloo process group on
// it, and the collectives as asynchronous work items that JavaScript waits for with a
// timeout. Stores, groups and work items are named by small numbers (registries below),
// never by pointers, so a stale or made-up number fails cleanly. What a worker does with
// them (buckets, gathered losses, synchronized batch norm) is TypeScript's.
#include "common.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <unordered_map>

#ifdef SIMCLR_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/buffer.h>
#include <gloo/transport/pair.h>
#include <dirent.h>
#include <sys/socket.h>
#endif

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <mutex>
#include <condition_variable>
#include <functional>
#include <thread>
#include <unordered_set>
#include <utility>

namespace simclr {
namespace {

#define OP(NAME, PARAMS, ...) \
  OpDef { NAME, PARAMS, [](Args& a) -> Napi::Value { Napi::Env env = a.env(); (void)env; __VA_ARGS__ } }

Napi::Value num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

// Milliseconds between 1 ms and 24 hours: a wait is always bounded.
std::chrono::milliseconds timeoutArg(Args& a, size_t i) {
  double v = a.d(i);
  if (!(v >= 1 && v <= 86400000.0)) a.typeError(i, "a timeout in milliseconds between 1 and 86400000");
  return std::chrono::milliseconds(static_cast<int64_t>(v));
}

int64_t rangedInt(Args& a, size_t i, int64_t lo, int64_t hi, const char* what) {
  int64_t v = a.i(i);
  if (v < lo || v > hi) a.typeError(i, what);
  return v;
}

#ifdef SIMCLR_WITH_GLOO

struct WorkEntry {
  c10::intrusive_ptr<c10d::Work> work;
  // The tensors the work reads and writes, held until it is waited for.
  std::vector<at::Tensor> tensors;
  std::vector<std::vector<at::Tensor>> outputs;
};

// Leaked on purpose: at process exit, no destructor joins Gloo's threads (which could be
// waiting on a peer that is gone).
template <typename V>
struct Registry {
  std::unordered_map<int64_t, V> items;
  int64_t next;
  const char* kind;
  Registry(int64_t first, const char* k) : next(first), kind(k) {}
  int64_t add(V v) {
    int64_t id = next++;
    items.emplace(id, std::move(v));
    return id;
  }
  V& get(Args& a, size_t i) {
    int64_t id = a.i(i);
    auto it = items.find(id);
    if (it == items.end()) a.typeErrorWhy(i, std::string("is not an open ") + kind + " (closed, finished, or never made)");
    return it->second;
  }
  void drop(int64_t id) { items.erase(id); }
};

// Groups of up to this many workers, and sums of up to this many bytes, go through the
// direct channel below; others through c10d's process group.
constexpr int DIRECT_MAX_WORKERS = 32;
constexpr size_t DIRECT_MAX_BYTES = 64 * 1024;
constexpr size_t DIRECT_SLOT = DIRECT_MAX_BYTES + sizeof(uint64_t);

// The direct channel: a Gloo context of its own over the group's store and device, its
// pairs in Gloo's synchronous mode (the calling thread writes and reads the sockets itself),
// with one send and one receive buffer per peer, made once. A small sum then costs one
// message each way and no thread hand-off: c10d's path (a work queue, its thread, a future;
// Gloo's event loop thread) costs about a millisecond a sum on a 2-core machine, this one
// tens of microseconds (npm run bench:collective-latency). Messages fit the sockets' buffers (DIRECT_MAX_BYTES), so every
// worker may write all of its messages before it reads.
struct DirectChannel {
  std::shared_ptr<::gloo::rendezvous::Context> context;
  // Each message: its payload's byte count (8 bytes), then the payload.
  std::vector<char> outgoing;
  std::vector<char> incoming;  // DIRECT_SLOT per rank
  std::vector<std::unique_ptr<::gloo::transport::Buffer>> sends, recvs;  // per rank; none for this one
  // Its connections' sockets, for the stop watcher; set once an exchange failed (a message
  // may be left half read): later ones refuse at once.
  std::vector<int> sockets;
  std::atomic<bool> broken{false};
  std::mutex busy;
};

// This process's connected TCP sockets.
std::vector<int> tcpConnections() {
  std::vector<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return fds;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long fd = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == dirfd(dir) || fd < 0 || fd > INT32_MAX) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    int type = 0;
    socklen_t typeLen = sizeof(type);
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &typeLen) != 0 || type != SOCK_STREAM) continue;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6) fds.push_back(static_cast<int>(fd));
  }
  closedir(dir);
  return fds;
}

struct GlooGroup : public c10d::ProcessGroupGloo {
  using c10d::ProcessGroupGloo::ProcessGroupGloo;
  std::unique_ptr<DirectChannel> direct;  // null: sums go through c10d
};

std::unique_ptr<DirectChannel> openDirectChannel(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                 std::shared_ptr<::gloo::transport::Device> device, std::chrono::milliseconds timeout) {
  auto ch = std::make_unique<DirectChannel>();
  ch->context = std::make_shared<::gloo::rendezvous::Context>(rank, size);
  ch->context->setTimeout(timeout);
  c10d::ProcessGroupGloo::GlooStore glooStore(store);
  ::gloo::rendezvous::PrefixStore prefixed("simclr-direct", glooStore);
  // The sockets that appear while its connections are made are its own (the process group's
  // were made before, and the caller waits for this).
  const std::vector<int> before = tcpConnections();
  ch->context->connectFullMesh(prefixed, device);
  for (int fd : tcpConnections())
    if (std::find(before.begin(), before.end(), fd) == before.end()) ch->sockets.push_back(fd);
  ch->outgoing.resize(DIRECT_SLOT);
  ch->incoming.resize(DIRECT_SLOT * static_cast<size_t>(size));
  ch->sends.resize(size);
  ch->recvs.resize(size);
  for (int r = 0; r < size; r++) {
    if (r == rank) continue;
    auto& pair = ch->context->getPair(r);
    pair->setSync(true, false);
    ch->sends[r] = pair->createSendBuffer(0, ch->outgoing.data(), DIRECT_SLOT);
    ch->recvs[r] = pair->createRecvBuffer(0, ch->incoming.data() + static_cast<size_t>(r) * DIRECT_SLOT, DIRECT_SLOT);
  }
  return ch;
}

auto& stores = *new Registry<c10::intrusive_ptr<c10d::Store>>(1, "store");
auto& groups = *new Registry<c10::intrusive_ptr<GlooGroup>>(1, "process group");
auto& works = *new Registry<WorkEntry>(1, "work item");

c10d::ReduceOp reduceOp(Args& a, size_t i) {
  std::string op = a.s(i);
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  a.typeError(i, "'sum', 'max', 'min' or 'product'");
}

// Gloo reads and writes the memory of a dense, contiguous CPU tensor.
at::Tensor commTensor(Args& a, size_t i) {
  at::Tensor t = a.t(i);
  if (!t.device().is_cpu()) a.typeErrorWhy(i, "must be a CPU tensor (Gloo), got one on " + t.device().str());
  if (t.layout() != at::kStrided || !t.is_contiguous()) a.typeErrorWhy(i, "must be a dense contiguous tensor");
  if (t.is_neg() || t.is_conj()) a.typeErrorWhy(i, "must not be a lazily negated or conjugated view");
  return t;
}

// Tensors on a GPU reach Gloo through the host: the collectives inside autograd functions
// (synchronized batch norm, the gathered projections) and the gradient buckets copy their
// few values to the CPU and back, so a CUDA build trains on the GPU over the same Gloo group.
bool onCpuOrGpu(const at::Tensor& t) { return t.device().is_cpu() || t.device().is_cuda(); }


// Autocast is off inside the fused functions, on the CPU and on CUDA.
c10::DispatchKeySet autocastKeys() { return c10::DispatchKeySet({c10::DispatchKey::AutocastCPU, c10::DispatchKey::AutocastCUDA}); }

Napi::Value addWork(Napi::Env env, c10::intrusive_ptr<c10d::Work> work, std::vector<at::Tensor> tensors,
                    std::vector<std::vector<at::Tensor>> outputs = {}) {
  return num(env, static_cast<double>(works.add(WorkEntry{std::move(work), std::move(tensors), std::move(outputs)})));
}

// What this process handed to collectives and how long it stood waiting for them (for
// profiling: `distCounters`). Bytes are each collective's input, per kind.
struct Counters {
  std::atomic<int64_t> waitNs{0};
  std::atomic<int64_t> allReduce{0}, allGather{0}, broadcast{0}, sumWithGrad{0}, gradients{0}, syncBatchNorm{0};
  std::atomic<int64_t> collectives{0};
};
Counters& counters = *new Counters();

void count(std::atomic<int64_t>& kind, const at::Tensor& t) {
  kind += static_cast<int64_t>(t.nbytes());
  counters.collectives++;
}

// Ctrl-C or SIGTERM while a collective waits on a peer that is stuck (stopped, hung): the
// main thread is blocked in the wait, so JavaScript's handler cannot run. This handler
// notes the signal and the time, then calls the one it replaced (Node's, which stops the run
// at the end of the step, or the default action). A wait still blocked STOP_GRACE after the
// signal gives up; a healthy peer reaches the collective well within it.
std::atomic<int> stopSignal{0};
std::atomic<int64_t> stopSignalAtNs{0};
struct sigaction replaced[2];
constexpr int STOP_SIGNALS[2] = {SIGINT, SIGTERM};
constexpr std::chrono::milliseconds STOP_GRACE{1000};
constexpr std::chrono::milliseconds WAIT_SLICE{100};

int64_t steadyNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void onStopSignal(int sig, siginfo_t* info, void* context) {
  stopSignalAtNs.store(steadyNs());
  stopSignal.store(sig);
  const struct sigaction& before = replaced[sig == SIGINT ? 0 : 1];
  // A handler installed for one delivery (Node's own, before JavaScript listens: it resets
  // the terminal and raises the signal again to die of it) gets the default action back
  // first, as it asked; otherwise its raise comes back here, and again, forever.
  if (before.sa_flags & SA_RESETHAND) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
  }
  if (before.sa_flags & SA_SIGINFO) {
    if (before.sa_sigaction) before.sa_sigaction(sig, info, context);
  } else if (before.sa_handler == SIG_DFL) {
    // Nobody handles it: its default action (ending the process), as without this handler.
    signal(sig, SIG_DFL);
    raise(sig);
  } else if (before.sa_handler != SIG_IGN && before.sa_handler != nullptr) {
    before.sa_handler(sig);
  }
}

// Puts onStopSignal in front of whatever handles SIGINT and SIGTERM now (Node installs its
// handlers when JavaScript first listens, replacing ours: checked again at every wait).
void watchStopSignals() {
  for (int k = 0; k < 2; k++) {
    struct sigaction now;
    if (sigaction(STOP_SIGNALS[k], nullptr, &now) != 0) continue;
    if ((now.sa_flags & SA_SIGINFO) && now.sa_sigaction == onStopSignal) continue;
    replaced[k] = now;
    struct sigaction mine = now;
    mine.sa_sigaction = onStopSignal;
    mine.sa_flags = (now.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
    sigaction(STOP_SIGNALS[k], &mine, nullptr);
  }
}

// Ctrl-C or SIGTERM came STOP_GRACE ago or more: a wait still blocked gives up.
bool stopGraceOver() {
  return stopSignal.load() != 0 && steadyNs() - stopSignalAtNs.load() >= std::chrono::duration_cast<std::chrono::nanoseconds>(STOP_GRACE).count();
}

[[noreturn]] void throwInterrupted(const char* what) {
  throw std::runtime_error(std::string("interrupted by ") + (stopSignal.load() == SIGINT ? "SIGINT" : "SIGTERM") + " while " + what);
}

// Runs make() on a thread of its own and waits for it in slices, so that Ctrl-C or SIGTERM
// ends the wait STOP_GRACE after the signal: c10d's constructors (a TCPStore client retrying
// its connection, a Gloo group meeting its peers) block until their timeout otherwise. An
// abandoned thread keeps what it captured and ends at that timeout; the process is stopping.
template <typename T>
T interruptibly(std::function<T()> make, const char* what) {
  struct State {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    c10::optional<T> value;
    std::exception_ptr error;
  };
  auto state = std::make_shared<State>();
  std::thread([state, make = std::move(make)] {
    c10::optional<T> value;
    std::exception_ptr error;
    try {
      value = make();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(state->m);
    state->value = std::move(value);
    state->error = error;
    state->done = true;
    state->cv.notify_all();
  }).detach();
  watchStopSignals();
  std::unique_lock<std::mutex> lock(state->m);
  while (!state->cv.wait_for(lock, WAIT_SLICE, [&] { return state->done; })) {
    if (stopGraceOver()) throwInterrupted(what);
  }
  if (state->error) std::rethrow_exception(state->error);
  return std::move(*state->value);
}

// Adds the time from its making to its end (a return or a throw) to the counters' waiting time.
struct WaitClock {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  ~WaitClock() { counters.waitNs += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count(); }
};

// Work::wait in slices, with the time spent added to the counters, also when it throws: past
// the timeout, or STOP_GRACE after a stop signal, it throws as a timed-out wait does.
void timedWait(c10d::Work& work, std::chrono::milliseconds timeout) {
  WaitClock clock;
  watchStopSignals();
  const auto deadline = clock.t0 + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    try {
      work.wait(std::max(std::chrono::milliseconds(1), std::min(WAIT_SLICE, left)));
      return;
    } catch (const c10::Error&) {
      // Completed: with its error, or just after the slice ran out (a race, not a timeout):
      // an unbounded wait now returns at once, or throws the collective's own error.
      if (work.isCompleted()) {
        work.wait();
        return;
      }
      if (std::chrono::steady_clock::now() >= deadline) throw;
    }
    if (stopGraceOver()) throwInterrupted("waiting for the other workers");
  }
}

// The direct exchange in flight and when it started, for the stop watcher.
std::mutex directMutex;
DirectChannel* directBlocked = nullptr;
int64_t directSinceNs = 0;

// A thread that ends a direct exchange still blocked STOP_GRACE after a stop signal (and at
// least WAIT_SLICE into its wait, as timedWait gives a healthy peer): the thread running it
// is inside a read that Gloo retries when a signal interrupts it. Shutting the channel's own
// sockets down ends the read, as if the peer had closed it. It polls (a signal handler may
// not wake it), and is started by the first direct exchange.
void startStopWatcher() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::thread([] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!stopGraceOver()) continue;
        std::lock_guard<std::mutex> lock(directMutex);
        if (directBlocked && steadyNs() - directSinceNs >= std::chrono::duration_cast<std::chrono::nanoseconds>(WAIT_SLICE).count())
          for (int fd : directBlocked->sockets) shutdown(fd, SHUT_RDWR);
      }
    }).detach();
  });
}

// Every worker's float32 or float64 values, [workers, n] in rank order, exchanged in the
// calling thread on the group's direct channel: each worker sends its values to every other.
// Waits at most the group's timeout; STOP_GRACE after Ctrl-C or SIGTERM, an exchange blocked
// on a stuck peer gives up.
at::Tensor directGather(DirectChannel& ch, const at::Tensor& buf) {
  TORCH_CHECK(buf.is_cpu() && buf.is_contiguous() && (buf.scalar_type() == at::kFloat || buf.scalar_type() == at::kDouble) &&
                  buf.nbytes() <= DIRECT_MAX_BYTES,
              "directGather: a contiguous float32 or float64 CPU tensor of at most 64 KiB");
  std::lock_guard<std::mutex> serial(ch.busy);
  WaitClock clock;
  watchStopSignals();
  startStopWatcher();
  TORCH_CHECK(!ch.broken.load(), "an earlier exchange between the workers failed");
  const int size = ch.context->size, me = ch.context->rank;
  const uint64_t bytes = buf.nbytes();
  std::memcpy(ch.outgoing.data(), &bytes, sizeof(bytes));
  std::memcpy(ch.outgoing.data() + sizeof(bytes), buf.data_ptr(), bytes);
  struct InFlight {
    explicit InFlight(DirectChannel* c) {
      std::lock_guard<std::mutex> lock(directMutex);
      directBlocked = c;
      directSinceNs = steadyNs();
    }
    ~InFlight() {
      std::lock_guard<std::mutex> lock(directMutex);
      directBlocked = nullptr;
    }
  } inFlight(&ch);
  try {
    for (int r = 0; r < size; r++)
      if (r != me) ch.sends[r]->send(0, sizeof(bytes) + bytes);
    for (int r = 0; r < size; r++) {
      if (r == me) continue;
      ch.recvs[r]->waitRecv();
      ch.sends[r]->waitSend();
    }
  } catch (const std::exception& e) {
    ch.broken = true;
    if (stopSignal.load() != 0) throwInterrupted("waiting for the other workers");
    throw std::runtime_error(e.what());
  }
  at::Tensor rows = at::empty({size, buf.numel()}, buf.options());
  auto* out = static_cast<char*>(rows.data_ptr());
  for (int r = 0; r < size; r++) {
    const char* from = r == me ? static_cast<const char*>(buf.data_ptr()) : ch.incoming.data() + static_cast<size_t>(r) * DIRECT_SLOT + sizeof(bytes);
    if (r != me) {
      uint64_t theirs = 0;
      std::memcpy(&theirs, ch.incoming.data() + static_cast<size_t>(r) * DIRECT_SLOT, sizeof(theirs));
      TORCH_CHECK(theirs == bytes, "rank ", r, " sent ", theirs, " bytes to a sum of ", bytes, ": the workers are not running the same step");
    }
    std::memcpy(out + static_cast<size_t>(r) * bytes, from, bytes);
  }
  return rows;
}

// The group's direct channel where it carries this host tensor (a small group, a small
// payload); null where c10d's process group does.
DirectChannel* directFor(GlooGroup& pg, const at::Tensor& host) { return pg.direct && host.nbytes() <= DIRECT_MAX_BYTES ? pg.direct.get() : nullptr; }

// Sums a host tensor over the workers in place through c10d's process group.
void c10dSumInPlace(GlooGroup& pg, at::Tensor& host, std::chrono::milliseconds timeout) {
  std::vector<at::Tensor> ts{host};
  auto work = pg.allreduce(ts);
  timedWait(*work, timeout);
}

// Every worker's values of a float64 host vector, [workers, n] in rank order: directly in
// small groups, through c10d's process group in large ones.
at::Tensor gatherOverWorkers(GlooGroup& pg, const at::Tensor& row, std::chrono::milliseconds timeout) {
  if (DirectChannel* ch = directFor(pg, row)) return directGather(*ch, row);
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < pg.getSize(); r++) outs[0].push_back(at::empty_like(row));
  std::vector<at::Tensor> in{row};
  auto work = pg.allgather(outs, in);
  timedWait(*work, timeout);
  return at::stack(outs[0]);
}

// Sums a float32 or float64 host tensor over the workers in place: directly in small
// groups, through c10d's process group in large ones.
void sumInPlace(GlooGroup& pg, at::Tensor& host, std::chrono::milliseconds timeout) {
  if (DirectChannel* ch = directFor(pg, host)) {
    // Added up in rank order from every worker's values: the same bits on every worker.
    at::Tensor rows = directGather(*ch, host);
    const int64_t n = host.numel();
    AT_DISPATCH_FLOATING_TYPES(host.scalar_type(), "sumInPlace", [&] {
      const scalar_t* v = rows.data_ptr<scalar_t>();
      scalar_t* out = host.data_ptr<scalar_t>();
      for (int64_t i = 0; i < n; i++) out[i] = v[i];
      for (int64_t r = 1; r < rows.size(0); r++)
        for (int64_t i = 0; i < n; i++) out[i] += v[r * n + i];
    });
    return;
  }
  c10dSumInPlace(pg, host, timeout);
}

// The group a number names, held for as long as a collective uses it.
c10::intrusive_ptr<GlooGroup> groupFor(int64_t groupId) {
  auto it = groups.items.find(groupId);
  TORCH_CHECK(it != groups.items.end(), "the process group was destroyed");
  return it->second;
}

// Sums a tensor over the workers, waiting at most `timeout`: floating-point values through
// a float32 (float64) host copy, others exactly through c10d.
at::Tensor sumOverWorkers(int64_t groupId, const at::Tensor& x, int64_t timeoutMs, std::atomic<int64_t>& kind) {
  auto pg = groupFor(groupId);
  if (!at::isFloatingType(x.scalar_type())) {
    at::Tensor exact = x.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true).contiguous();
    count(kind, exact);
    c10dSumInPlace(*pg, exact, std::chrono::milliseconds(timeoutMs));
    return exact.to(x.device());
  }
  at::ScalarType wide = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor buf = x.detach().to(at::kCPU, wide, /*non_blocking=*/false, /*copy=*/true).contiguous();
  count(kind, buf);
  sumInPlace(*pg, buf, std::chrono::milliseconds(timeoutMs));
  return buf.to(x.device(), x.scalar_type());
}

// The arguments of a blocking sum: group, tensor (dense, on the CPU or a GPU), timeoutMs.
struct SumArgs {
  int64_t group;
  at::Tensor x;
  int64_t timeoutMs;
};
SumArgs sumArgs(Args& a) {
  int64_t id = a.i(0);
  groups.get(a, 0);
  at::Tensor x = a.t(1);
  if (!onCpuOrGpu(x) || x.layout() != at::kStrided) a.typeErrorWhy(1, "must be a dense tensor on the CPU or a GPU");
  return {id, x, timeoutArg(a, 2).count()};
}

// The autograd-aware all-reduce (sum): y = sum over workers of x; the gradient of x is the
// sum over workers of y's gradient. Synchronized batch norm and the gathered projections
// are built from it in TypeScript.
struct SumOverWorkers : public torch::autograd::Function<SumOverWorkers> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t groupId, int64_t timeoutMs) {
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["timeout"] = timeoutMs;
    return sumOverWorkers(groupId, x, timeoutMs, counters.sumWithGrad);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    at::Tensor g = sumOverWorkers(ctx->saved_data["group"].toInt(), grads[0], ctx->saved_data["timeout"].toInt(), counters.sumWithGrad);
    return {g, at::Tensor(), at::Tensor()};
  }
};

// Synchronized batch norm as one autograd function on libtorch's fused kernels, with one
// exchange forward and one sum backward (the gradients of the gathered statistics).
// Forward: each worker takes the mean and biased variance of its share per channel
// (libtorch's statistics kernel, as batch norm's own), and every worker's [mean, variance,
// count] is gathered; the global ones follow from Chan, Golub and LeVeque's pairwise
// combination, in float64 and rank order (the same bits everywhere):
//   N = sum n_r,  mean = sum n_r m_r / N,  var = sum n_r (v_r + (m_r - mean)^2) / N,
// no sums of squares that a large channel mean would cancel. y is the fused kernel's
// eval-mode output with those statistics. Backward: the fused kernel's eval-mode backward
// gives this worker's sums of dy and dy * xhat (also the weight's and bias's gradients); their
// sums over workers give the statistics' gradient:
//   dx = weight * invstd * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N) = a dy + k x + c,
// per channel: one eval-mode batch norm pass on dy (scale a, shift c) and one of k x.
// Inputs of another float dtype (bfloat16 under autocast) are computed in float32. A missing
// weight or bias comes as a stand-in (ones, zeros) with its flag false.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static std::vector<int64_t> channelShape(const at::Tensor& x) {
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = x.size(1);
    return shape;
  }

  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                                                const at::Tensor& bias, int64_t groupId, int64_t timeoutMs, double eps, bool hasWeight,
                                                bool hasBias) {
    c10::impl::ExcludeDispatchKeyGuard noAutocast(autocastKeys());
    at::ScalarType work = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    at::Tensor xf = x.to(work);
    const int64_t channels = x.size(1);
    auto stats = at::batch_norm_update_stats(xf, c10::nullopt, c10::nullopt, 0.0);
    at::Tensor row = at::cat({std::get<0>(stats).to(at::kCPU, at::kDouble), std::get<1>(stats).to(at::kCPU, at::kDouble),
                              at::full({1}, static_cast<double>(x.numel() / channels), at::TensorOptions().dtype(at::kDouble))});
    count(counters.syncBatchNorm, row);
    at::Tensor rows = gatherOverWorkers(*groupFor(groupId), row, std::chrono::milliseconds(timeoutMs)).contiguous();
    const int64_t workers = rows.size(0), width = rows.size(1);
    const double* v = rows.data_ptr<double>();
    double n = 0;
    for (int64_t r = 0; r < workers; r++) n += v[r * width + 2 * channels];
    at::Tensor meanD = at::empty({channels}, at::kDouble), varD = at::empty({channels}, at::kDouble);
    double* m = meanD.data_ptr<double>();
    double* q = varD.data_ptr<double>();
    for (int64_t c = 0; c < channels; c++) {
      double sum = 0;
      for (int64_t r = 0; r < workers; r++) sum += v[r * width + 2 * channels] * v[r * width + c];
      m[c] = sum / n;
      double spread = 0;
      for (int64_t r = 0; r < workers; r++) {
        const double d = v[r * width + c] - m[c];
        spread += v[r * width + 2 * channels] * (v[r * width + channels + c] + d * d);
      }
      q[c] = spread / n;
    }
    at::Tensor mean = meanD.to(xf.device(), work), var = varD.to(xf.device(), work);
    at::Tensor w = weight.to(work);
    at::Tensor b = hasBias ? bias.to(work) : at::Tensor();
    at::Tensor y = std::get<0>(at::native_batch_norm(xf, w, b, mean, var, false, 0.0, eps));
    ctx->save_for_backward({xf, w, mean, var});
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["timeout"] = timeoutMs;
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["n"] = n;
    ctx->saved_data["hasWeight"] = hasWeight;
    ctx->saved_data["hasBias"] = hasBias;
    at::Tensor total = at::full({1}, n, at::kDouble);
    ctx->mark_non_differentiable({mean, var, total});
    return {y.to(x.scalar_type()), mean, var, total};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard noAutocast(autocastKeys());
    auto saved = ctx->get_saved_variables();
    at::Tensor xf = saved[0], w = saved[1], mean = saved[2], var = saved[3];
    double eps = ctx->saved_data["eps"].toDouble();
    double n = ctx->saved_data["n"].toDouble();
    int64_t channels = xf.size(1);
    at::Tensor dy = grads[0].defined() ? grads[0].to(xf.scalar_type()) : at::zeros_like(xf);
    // This worker's sums from the eval-mode backward, without its grad_input. CUDA's kernel
    // wants the saved statistics defined but empty to read them from mean and var (its
    // channels-last and 2-D paths assert on undefined ones); the CPU kernel takes undefined ones.
    at::Tensor none = xf.is_cuda() ? at::empty({0}, mean.options()) : at::Tensor();
    auto parts = at::native_batch_norm_backward(dy, xf, w, mean, var, none, none, false, eps, {false, true, true});
    at::Tensor sumDyXhat = std::get<1>(parts), sumDy = std::get<2>(parts);
    at::Tensor global = at::cat({sumDy.to(at::kCPU, at::kDouble), sumDyXhat.to(at::kCPU, at::kDouble)}).contiguous();
    count(counters.syncBatchNorm, global);
    sumInPlace(*groupFor(ctx->saved_data["group"].toInt()), global, std::chrono::milliseconds(ctx->saved_data["timeout"].toInt()));
    global = global.to(xf.device());
    at::Tensor invstd = (var.to(at::kDouble) + eps).rsqrt();
    at::Tensor a = w.to(at::kDouble) * invstd;
    at::Tensor g1 = global.narrow(0, 0, channels) / n, g2 = global.narrow(0, channels, channels) / n;
    // dx = a dy - a g1 - a invstd g2 (x - mean) = a dy + k x + c, per channel.
    at::Tensor k = -a * invstd * g2;
    at::Tensor c = -a * g1 - k * mean.to(at::kDouble);
    at::ScalarType st = xf.scalar_type();
    at::Tensor zero = at::zeros({channels}, xf.options()), one = at::ones({channels}, xf.options());
    at::Tensor dx = std::get<0>(at::native_batch_norm(dy, a.to(st), c.to(st), zero, one, false, 0.0, 0.0));
    dx.addcmul_(xf, k.to(st).view(channelShape(xf)));
    bool hasWeight = ctx->saved_data["hasWeight"].toBool(), hasBias = ctx->saved_data["hasBias"].toBool();
    return {dx, hasWeight ? sumDyXhat : at::Tensor(), hasBias ? sumDy : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

// Polls done() every `every` until it holds; past the timeout it throws as c10d's stores
// do ("Wait timeout"). between() runs before each sleep (a stop check, say).
template <typename Done, typename Between>
void pollUntil(Done done, std::chrono::milliseconds timeout, std::chrono::milliseconds every, Between between) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) throw std::runtime_error("Wait timeout");
    between();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, every));
  }
}

// c10d's FileStore, guarded where it would end the process or loop for ever:
// - it opens its file only when used, and its destructor (noexcept) opens it again to count
//   this worker out: a path it cannot open there (a folder, say) throws out of a destructor.
//   The file is made at open (as c10d would make it); a path that exists as anything but a
//   regular file is refused.
// - it keeps its read position in the file between calls, and a store that is closed removes
//   the file once as many have closed as the world size (with a world size of 1: at once,
//   under any other store open on that path). A store reading a removed or re-created file
//   from its old position takes garbage for a record's length and loops at the end of the
//   file. So each operation first checks that the file is still the one it opened (held open
//   here, so that a new file cannot get its inode number), at least as long as what it has
//   read, and the destructor skips c10d's count where it is not.
class GuardedFileStore : public c10d::FileStore {
 public:
  GuardedFileStore(const std::string& path, int workers) : FileStore(path, workers) {
    // A refused path is cleared first: c10d's destructor runs as the exception leaves.
    const auto refuse = [this](const std::string& why) {
      path_.clear();
      throw std::runtime_error(why);
    };
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) refuse(path + " exists and is not a regular file");
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) refuse("cannot open " + path + ": " + std::strerror(errno));
    ::fstat(fd_, &st);
    dev_ = st.st_dev;
    ino_ = st.st_ino;
  }
  ~GuardedFileStore() override {
    if (!intact()) path_.clear();  // c10d's destructor then finds no file, and leaves it be
    ::close(fd_);
  }

  void set(const std::string& key, const std::vector<uint8_t>& value) override { guard(), FileStore::set(key, value); }
  std::vector<uint8_t> compareSet(const std::string& key, const std::vector<uint8_t>& expected, const std::vector<uint8_t>& desired) override {
    return guard(), FileStore::compareSet(key, expected, desired);
  }
  std::vector<uint8_t> get(const std::string& key) override { return guard(), FileStore::get(key); }
  int64_t add(const std::string& key, int64_t value) override { return guard(), FileStore::add(key, value); }
  int64_t getNumKeys() override { return guard(), FileStore::getNumKeys(); }
  bool deleteKey(const std::string& key) override { return guard(), FileStore::deleteKey(key); }
  bool check(const std::vector<std::string>& keys) override { return guard(), FileStore::check(keys); }
  // c10d's wait counts its timeout in whole seconds (50 ms lasts a second): polled here, as
  // c10d polls, to the millisecond. Gloo meets its peers through this wait too.
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    pollUntil([&] { return check(keys); }, timeout, std::chrono::milliseconds(5), [] {});
  }

 private:
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;

  // The file this store made, no shorter than what it has read, and still one it can open.
  bool intact() {
    std::lock_guard<std::mutex> lock(activeFileOpLock_);
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_ || st.st_size < pos_) return false;
    int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }
  void guard() {
    if (!intact()) throw std::runtime_error("the store's file " + path_ + " was removed or replaced (another store on the same path was closed?)");
  }
};

// A key waited for by polling every store (check is one request and its answer; a TCPStore's
// own wait cannot be cut short without leaving its answer in the socket), so that Ctrl-C or
// SIGTERM ends a wait for a worker that never comes STOP_GRACE after the signal. A file
// store's check reads a local file: it is polled more often than a TCPStore's round trip.
void waitForKey(c10d::Store& s, const std::string& key, std::chrono::milliseconds timeout) {
  const bool file = dynamic_cast<c10d::FileStore*>(&s) != nullptr;
  watchStopSignals();
  pollUntil([&] { return s.check({key}); }, timeout, std::chrono::milliseconds(file ? 5 : 20), [] {
    if (stopGraceOver()) throwInterrupted("waiting for the other workers to join");
  });
}

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Gradient averaging overlapped with the backward pass, as c10d's DDP Reducer does it: a
// post-hook on each parameter's gradient accumulator copies the finished gradient into its
// bucket; a bucket whose gradients are all in starts its all-reduce (sum) at once, buckets
// strictly in order so that every worker issues the same collectives in the same order.
// finish() starts what is left (a parameter without a gradient counts as zeros), waits for
// every bucket with a timeout, and writes the mean back, exactly as averageGradients does:
// float32 buckets (float64 where a member is float64), then per parameter a flag (1 where this worker has a gradient; summed,
// whether any worker had one), the sum scaled by 1 / world size.
// The hooks only act while armed (between arm and finish), so other backward passes over the
// same parameters are left alone; they hold the reducer weakly, and a dropped reducer
// removes them.
// A gradient accumulator as impl::grad_accumulator returns it: std::shared_ptr<Node> through
// PyTorch 2.11, c10::intrusive_ptr<Node> after (pytorch#181782).
using NodeRef = decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()));

struct GradReducer {
  std::mutex mu;
  int64_t groupId = 0;
  int64_t worldSize = 1;
  std::vector<at::Tensor> params;  // in bucket order (the order the backward pass finishes them)
  std::vector<int64_t> numel;      // each parameter's size when the reducer was made
  std::vector<int64_t> bucketOf, offset, indexInBucket;
  std::vector<int64_t> bucketElems;  // gradient elements per bucket (the flags follow)
  std::vector<int64_t> bucketFirst;  // first parameter of each bucket, plus the end
  std::vector<at::ScalarType> bucketType;
  std::vector<NodeRef> accumulators;
  std::vector<uintptr_t> hookKeys;
  // One backward pass:
  bool armed = false;
  std::vector<uint8_t> ready;
  std::vector<int64_t> waiting;  // per bucket: parameters not yet in
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  size_t launched = 0;
  std::string error;

  size_t buckets() const { return bucketElems.size(); }

  // Starts the all-reduce of every bucket that is complete and next in line. Caller holds mu.
  void launchReady(bool all) {
    while (launched < buckets() && (all || waiting[launched] == 0)) {
      auto it = groups.items.find(groupId);
      if (it == groups.items.end()) throw std::runtime_error("the process group was destroyed during the backward pass");
      std::vector<at::Tensor> ts{flats[launched]};
      count(counters.gradients, ts[0]);
      works[launched] = it->second->allreduce(ts);
      launched++;
    }
  }

  // A parameter's gradient is final (its accumulator ran). Never throws into the engine: a
  // failure is kept for finish() to report.
  void ready_(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || !error.empty()) return;
    if (ready[i]) {
      // The gradient grew again after it was copied: finish() would overwrite the sum.
      error = "a second backward pass ran between arm() and finish(): arm and finish around each backward pass (or sum the losses and call backward once)";
      return;
    }
    try {
      ready[i] = 1;
      const at::Tensor& g = params[i].grad();
      int64_t b = bucketOf[i];
      if (g.defined()) {
        TORCH_CHECK(g.layout() == at::kStrided && g.numel() == numel[i], "parameter ", i, "'s gradient is not a dense tensor of its ", numel[i], " elements");
        at::NoGradGuard noGrad;
        flats[b].narrow(0, offset[i], numel[i]).copy_(g.reshape({-1}));
        int64_t flag = bucketElems[b] + indexInBucket[i];
        if (bucketType[b] == at::kDouble) flats[b].data_ptr<double>()[flag] = 1;
        else flats[b].data_ptr<float>()[flag] = 1;
      }
      waiting[b]--;
      launchReady(false);
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
};

// Leaked on purpose like the other registries; the hooks see a reducer through a weak pointer.
auto& reducers = *new Registry<std::shared_ptr<GradReducer>>(1, "gradient reducer");

void dropHooks(GradReducer& r) {
  for (size_t i = 0; i < r.accumulators.size(); ++i)
    if (r.accumulators[i]) r.accumulators[i]->del_post_hook(r.hookKeys[i]);
  r.accumulators.clear();
  r.hookKeys.clear();
}


const std::vector<OpDef> kDistOps = {
    OP("distAvailable", "", { return Napi::Boolean::New(env, true); }),
    // The rendezvous: rank 0 (isServer) listens on host:port, the others connect, retrying
    // until the timeout. Nothing waits for the other workers here.
    OP("distStoreOpen", "host, port, isServer, timeoutMs", {
      std::string host = a.s(0);
      int64_t port = rangedInt(a, 1, 0, 65535, "a port number between 0 and 65535");
      bool server = a.b(2);
      auto timeout = timeoutArg(a, 3);
      if (host.empty() || host.size() > 255 || host.find('\0') != std::string::npos) a.typeError(0, "a host name or address");
      c10d::TCPStoreOptions opts;
      opts.port = static_cast<uint16_t>(port);
      opts.isServer = server;
      opts.waitWorkers = false;
      opts.timeout = timeout;
      auto store = interruptibly<c10::intrusive_ptr<c10d::Store>>([host, opts] { return c10::make_intrusive<c10d::TCPStore>(host, opts); }, "connecting to the rendezvous");
      return num(env, static_cast<double>(stores.add(std::move(store))));
    }),
    // One machine's rendezvous: a file in a folder only this user reads (the launcher makes
    // it 0700), which nothing on the network can reach, unlike a TCPStore's port. The file
    // must be new: c10d counts the workers that opened it in the file itself. timeoutMs
    // bounds a get of a key nobody sets, as a TCPStore's does (c10d's default: 300 s).
    OP("distFileStoreOpen", "path, worldSize, timeoutMs?", {
      std::string path = a.s(0);
      if (path.empty() || path.size() > 4096 || path[0] != '/' || path.find('\0') != std::string::npos) a.typeError(0, "an absolute file path");
      int64_t size = rangedInt(a, 1, 1, 1 << 20, "a world size between 1 and 1048576");
      c10::optional<std::chrono::milliseconds> timeout;
      if (a.has(2)) timeout = timeoutArg(a, 2);
      auto store = c10::make_intrusive<GuardedFileStore>(path, static_cast<int>(size));
      if (timeout) store->setTimeout(*timeout);
      return num(env, static_cast<double>(stores.add(std::move(store))));
    }),
    OP("distStorePort", "store", {
      auto* tcp = dynamic_cast<c10d::TCPStore*>(stores.get(a, 0).get());
      TORCH_CHECK(tcp != nullptr, "the store is a file store, which has no port");
      return num(env, tcp->getPort());
    }),
    OP("distStoreSet", "store, key, value", {
      auto& s = stores.get(a, 0);
      s->set(a.s(1), bytesOf(a.s(2)));
      return env.Undefined();
    }),
    OP("distStoreGet", "store, key", {
      auto& s = stores.get(a, 0);
      std::string key = a.s(1);
      waitForKey(*s, key, s->getTimeout());
      std::vector<uint8_t> v = s->get(key);
      return Napi::String::New(env, std::string(v.begin(), v.end()));
    }),
    OP("distStoreAdd", "store, key, delta", {
      auto& s = stores.get(a, 0);
      return num(env, static_cast<double>(s->add(a.s(1), a.i(2))));
    }),
    OP("distStoreCheck", "store, key", {
      auto& s = stores.get(a, 0);
      return Napi::Boolean::New(env, s->check({a.s(1)}));
    }),
    OP("distStoreWait", "store, key, timeoutMs", {
      auto& s = stores.get(a, 0);
      std::string key = a.s(1);
      waitForKey(*s, key, timeoutArg(a, 2));
      return env.Undefined();
    }),
    OP("distStoreClose", "store", {
      int64_t id = a.i(0);
      stores.get(a, 0);
      stores.drop(id);
      return env.Undefined();
    }),
    // A Gloo process group over a store. bindHost: the address this worker's Gloo device
    // listens on ("" for the host name's address, as PyTorch's default).
    OP("distGroupNew", "store, rank, worldSize, timeoutMs, bindHost, threads", {
      auto& s = stores.get(a, 0);
      int64_t size = rangedInt(a, 2, 1, 1 << 20, "a world size between 1 and 1048576");
      int64_t rank = rangedInt(a, 1, 0, size - 1, "a rank between 0 and worldSize - 1");
      auto timeout = timeoutArg(a, 3);
      std::string bind = a.s(4);
      int64_t threads = rangedInt(a, 5, 1, 64, "a number of Gloo threads between 1 and 64");
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      opts->devices.push_back(bind.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                           : c10d::ProcessGroupGloo::createDeviceForHostname(bind));
      opts->threads = static_cast<int>(threads);
      c10::intrusive_ptr<c10d::Store> store = s;
      auto pg = interruptibly<c10::intrusive_ptr<GlooGroup>>(
          [store, rank, size, opts, timeout] {
            auto made = c10::make_intrusive<GlooGroup>(store, static_cast<int>(rank), static_cast<int>(size), opts);
            if (size > 1 && size <= DIRECT_MAX_WORKERS)
              made->direct = openDirectChannel(store, static_cast<int>(rank), static_cast<int>(size), opts->devices[0], timeout);
            return made;
          },
          "connecting to the other workers");
      return num(env, static_cast<double>(groups.add(pg)));
    }),
    OP("distGroupDestroy", "group", {
      int64_t id = a.i(0);
      groups.get(a, 0);
      groups.drop(id);
      return env.Undefined();
    }),
    // Collectives start and return a work item; distWait finishes it.
    OP("distAllReduce", "group, tensor, op", {
      auto& pg = groups.get(a, 0);
      std::vector<at::Tensor> ts{commTensor(a, 1)};
      c10d::AllreduceOptions o;
      o.reduceOp = reduceOp(a, 2);
      count(counters.allReduce, ts[0]);
      return addWork(env, pg->allreduce(ts, o), ts);
    }),
    OP("distAllGather", "group, outputs, tensor", {
      auto& pg = groups.get(a, 0);
      std::vector<at::Tensor> outs = a.ts(1);
      std::vector<at::Tensor> in{commTensor(a, 2)};
      TORCH_CHECK(static_cast<int64_t>(outs.size()) == pg->getSize(), "outputs: one tensor per worker (", pg->getSize(), ") needed, got ", outs.size());
      for (const at::Tensor& o : outs) {
        TORCH_CHECK(o.device().is_cpu() && o.layout() == at::kStrided && o.is_contiguous() && !o.is_neg() && !o.is_conj(),
                    "outputs: each must be a dense contiguous CPU tensor");
        TORCH_CHECK(o.scalar_type() == in[0].scalar_type() && o.sizes().equals(in[0].sizes()),
                    "outputs: each must have the input's dtype and shape ", in[0].sizes());
        TORCH_CHECK(!o.is_same(in[0]), "outputs: the input cannot be one of the outputs");
      }
      std::vector<std::vector<at::Tensor>> outputs{outs};
      count(counters.allGather, in[0]);
      auto work = pg->allgather(outputs, in);
      return addWork(env, work, in, outputs);
    }),
    OP("distBroadcast", "group, tensor, root", {
      auto& pg = groups.get(a, 0);
      std::vector<at::Tensor> ts{commTensor(a, 1)};
      c10d::BroadcastOptions o;
      o.rootRank = rangedInt(a, 2, 0, pg->getSize() - 1, "a root rank between 0 and worldSize - 1");
      count(counters.broadcast, ts[0]);
      return addWork(env, pg->broadcast(ts, o), ts);
    }),
    OP("distBarrier", "group", {
      auto& pg = groups.get(a, 0);
      return addWork(env, pg->barrier(), {});
    }),
    // Waits for a work item, at most timeoutMs; throws what the collective failed with (a
    // peer that closed its connection, Gloo's own timeout) or a timeout. The item is gone after.
    OP("distWait", "work, timeoutMs", {
      int64_t id = a.i(0);
      c10::intrusive_ptr<c10d::Work> work = works.get(a, 0).work;
      auto timeout = timeoutArg(a, 1);
      struct Drop {
        int64_t id;
        ~Drop() { works.drop(id); }
      } drop{id};
      timedWait(*work, timeout);
      return env.Undefined();
    }),
    OP("distPending", "", { return num(env, static_cast<double>(works.items.size())); }),
    // What this process handed to collectives (bytes of their inputs, by kind) and the
    // milliseconds it stood waiting for them, since it started.
    OP("distCounters", "", {
      auto out = Napi::Object::New(env);
      out.Set("waitMs", counters.waitNs.load() / 1e6);
      out.Set("collectives", static_cast<double>(counters.collectives.load()));
      out.Set("allReduceBytes", static_cast<double>(counters.allReduce.load()));
      out.Set("allGatherBytes", static_cast<double>(counters.allGather.load()));
      out.Set("broadcastBytes", static_cast<double>(counters.broadcast.load()));
      out.Set("sumWithGradBytes", static_cast<double>(counters.sumWithGrad.load()));
      out.Set("gradientBytes", static_cast<double>(counters.gradients.load()));
      out.Set("syncBatchNormBytes", static_cast<double>(counters.syncBatchNorm.load()));
      return out;
    }),
    // The overlapped gradient averaging (GradReducer above). params: in bucket order;
    // bucketSizes: how many of them each bucket takes, in order.
    OP("distReducerNew", "group, params, bucketSizes", {
      int64_t gid = a.i(0);
      auto& pg = groups.get(a, 0);
      std::vector<at::Tensor> params = a.ts(1);
      std::vector<int64_t> sizes = a.ints(2);
      if (params.empty()) a.typeErrorWhy(1, "must list at least one parameter");
      std::unordered_set<const void*> seen;
      for (const at::Tensor& p : params) {
        if (!p.defined() || !onCpuOrGpu(p) || p.layout() != at::kStrided || !at::isFloatingType(p.scalar_type()))
          a.typeErrorWhy(1, "must hold dense floating-point tensors on the CPU or a GPU");
        if (!p.is_leaf() || !p.requires_grad()) a.typeErrorWhy(1, "must hold leaf tensors that require grad (parameters)");
        if (!seen.insert(p.unsafeGetTensorImpl()).second) a.typeErrorWhy(1, "lists one tensor twice");
      }
      int64_t total = 0;
      for (int64_t n : sizes) {
        if (n < 1) a.typeErrorWhy(2, "must hold positive counts");
        total += n;
        if (total > static_cast<int64_t>(params.size())) break;
      }
      if (total != static_cast<int64_t>(params.size())) a.typeErrorWhy(2, "must add up to the number of parameters (" + std::to_string(params.size()) + ")");
      auto r = std::make_shared<GradReducer>();
      r->groupId = gid;
      r->worldSize = pg->getSize();
      r->params = params;
      size_t i = 0;
      for (size_t b = 0; b < sizes.size(); ++b) {
        r->bucketFirst.push_back(static_cast<int64_t>(i));
        int64_t elems = 0;
        at::ScalarType type = at::kFloat;
        for (int64_t j = 0; j < sizes[b]; ++j, ++i) {
          if (params[i].scalar_type() == at::kDouble) type = at::kDouble;
          r->numel.push_back(params[i].numel());
          r->bucketOf.push_back(static_cast<int64_t>(b));
          r->offset.push_back(elems);
          r->indexInBucket.push_back(j);
          elems += params[i].numel();
        }
        r->bucketElems.push_back(elems);
        r->bucketType.push_back(type);
      }
      r->bucketFirst.push_back(static_cast<int64_t>(i));
      std::weak_ptr<GradReducer> weak = r;
      for (size_t k = 0; k < params.size(); ++k) {
        NodeRef acc = torch::autograd::impl::grad_accumulator(params[k]);
        if (!acc) {
          dropHooks(*r);
          a.typeErrorWhy(1, "holds a tensor without a gradient accumulator");
        }
        auto hook = std::make_unique<torch::autograd::utils::LambdaPostHook>(
            [weak, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
              if (auto live = weak.lock()) live->ready_(k);
              return outputs;
            });
        r->hookKeys.push_back(acc->add_post_hook(std::move(hook)));
        r->accumulators.push_back(std::move(acc));
      }
      return num(env, static_cast<double>(reducers.add(std::move(r))));
    }),
    // Before the backward pass: fresh zeroed buckets, nothing ready. A pass that threw
    // before its finish is forgotten (Gloo's work items keep the buckets they still use).
    OP("distReducerArm", "reducer", {
      std::shared_ptr<GradReducer> r = reducers.get(a, 0);
      std::lock_guard<std::mutex> lock(r->mu);
      if (groups.items.find(r->groupId) == groups.items.end()) throw std::runtime_error("the process group was destroyed");
      for (size_t i = 0; i < r->params.size(); ++i)
        TORCH_CHECK(r->params[i].numel() == r->numel[i], "parameter ", i, " changed size since the reducer was made");
      r->flats.clear();
      for (size_t b = 0; b < r->buckets(); ++b)
        r->flats.push_back(at::zeros({r->bucketElems[b] + r->bucketFirst[b + 1] - r->bucketFirst[b]}, r->bucketType[b]));
      r->works.assign(r->buckets(), {});
      r->ready.assign(r->params.size(), 0);
      r->waiting.clear();
      for (size_t b = 0; b < r->buckets(); ++b) r->waiting.push_back(r->bucketFirst[b + 1] - r->bucketFirst[b]);
      r->launched = 0;
      r->error.clear();
      r->armed = true;
      return env.Undefined();
    }),
    // After the backward pass: starts the buckets not yet started, waits for each (at most
    // timeoutMs) and writes the mean back into the gradients.
    OP("distReducerFinish", "reducer, timeoutMs", {
      std::shared_ptr<GradReducer> r = reducers.get(a, 0);
      auto timeout = timeoutArg(a, 1);
      std::lock_guard<std::mutex> lock(r->mu);
      if (!r->armed) throw std::runtime_error("the reducer was not armed before the backward pass");
      r->armed = false;
      struct Clear {
        GradReducer& r;
        ~Clear() {
          r.flats.clear();
          r.works.clear();
        }
      } clear{*r};
      if (!r->error.empty()) throw std::runtime_error(r->error);
      r->launchReady(true);
      at::NoGradGuard noGrad;
      for (size_t b = 0; b < r->buckets(); ++b) {
        timedWait(*r->works[b], timeout);
        at::Tensor flat = r->flats[b];
        int64_t first = r->bucketFirst[b];
        int64_t members = r->bucketFirst[b + 1] - first;
        at::Tensor flags = flat.narrow(0, r->bucketElems[b], members).to(at::kFloat).contiguous();
        std::vector<float> present(flags.data_ptr<float>(), flags.data_ptr<float>() + members);
        flat.mul_(1.0 / static_cast<double>(r->worldSize));
        for (int64_t j = 0; j < members; ++j) {
          at::Tensor& p = r->params[first + j];
          int64_t n = r->numel[first + j];
          TORCH_CHECK(p.numel() == n, "parameter ", first + j, " changed size during the backward pass");
          at::Tensor part = flat.narrow(0, r->offset[first + j], n).view(p.sizes()).to(p.scalar_type());
          at::Tensor g = p.grad();
          if (g.defined()) g.copy_(part);
          else if (present[j] > 0) p.mutable_grad() = part.to(p.options(), /*non_blocking=*/false, /*copy=*/true);
        }
      }
      return env.Undefined();
    }),
    OP("distReducerDrop", "reducer", {
      int64_t id = a.i(0);
      std::shared_ptr<GradReducer> r = reducers.get(a, 0);
      {
        std::lock_guard<std::mutex> lock(r->mu);
        dropHooks(*r);
        r->armed = false;
      }
      reducers.drop(id);
      return env.Undefined();
    }),
    // Synchronized batch norm in training mode (SyncBatchNorm above): [y, mean, biased
    // variance, count] over every worker's batch; weight and bias may be null.
    OP("distSyncBatchNorm", "group, input, weight, bias, eps, timeoutMs", {
      int64_t id = a.i(0);
      groups.get(a, 0);
      at::Tensor x = a.t(1);
      if (!onCpuOrGpu(x) || x.layout() != at::kStrided || !at::isFloatingType(x.scalar_type()) || x.dim() < 2 || x.size(1) < 1 || x.numel() == 0)
        a.typeErrorWhy(1, "must be a dense floating-point tensor [N, C, ...] with elements, on the CPU or a GPU");
      int64_t channels = x.size(1);
      auto perChannel = [&](size_t i, bool optional) -> at::Tensor {
        if (optional && !a.has(i)) return at::Tensor();
        at::Tensor p = a.t(i);
        if (p.device() != x.device() || p.layout() != at::kStrided || !at::isFloatingType(p.scalar_type()) || p.dim() != 1 || p.size(0) != channels)
          a.typeErrorWhy(i, "must be a dense floating-point tensor of the input's " + std::to_string(channels) + " channels, on its device (" + x.device().str() + ")");
        return p;
      };
      at::Tensor weight = perChannel(2, true), bias = perChannel(3, true);
      // autograd functions take defined tensors only: stand-ins (ones, zeros) for a missing
      // weight or bias, which then get no gradient.
      bool hasWeight = weight.defined(), hasBias = bias.defined();
      if (!hasWeight) weight = at::ones({channels}, x.options().dtype(at::kFloat));
      if (!hasBias) bias = at::zeros({channels}, x.options().dtype(at::kFloat));
      double eps = a.d(4);
      if (!(eps > 0 && eps < 1)) a.typeError(4, "a number between 0 and 1");
      int64_t ms = timeoutArg(a, 5).count();
      return wrapList(env, SyncBatchNorm::apply(x, weight, bias, id, ms, eps, hasWeight, hasBias));
    }),
    // Blocking, and recorded by autograd: the backward pass sums the gradient over workers.
    OP("distSumWithGrad", "group, tensor, timeoutMs", {
      SumArgs s = sumArgs(a);
      return wrap(env, SumOverWorkers::apply(s.x, s.group, s.timeoutMs));
    }),
    // Blocking, no autograd: the sum over workers of a few figures (counted as an all-reduce).
    OP("distSumNow", "group, tensor, timeoutMs", {
      SumArgs s = sumArgs(a);
      return wrap(env, sumOverWorkers(s.group, s.x, s.timeoutMs, counters.allReduce));
    }),
};

#else  // no Gloo headers at build time

[[noreturn]] void unavailable(Args& a) {
  (void)a;
  throw std::runtime_error(
      "this addon was built without c10d's Gloo backend (Gloo's headers were missing); install libgloo-dev "
      "(Debian/Ubuntu) and rebuild with `node scripts/setup.mjs --native`");
}
#define NO_GLOO(NAME, PARAMS) OP(NAME, PARAMS, { unavailable(a); })

const std::vector<OpDef> kDistOps = {
    OP("distAvailable", "", { return Napi::Boolean::New(env, false); }),
    NO_GLOO("distStoreOpen", "host, port, isServer, timeoutMs"),
    NO_GLOO("distStorePort", "store"),
    NO_GLOO("distStoreSet", "store, key, value"),
    NO_GLOO("distStoreGet", "store, key"),
    NO_GLOO("distStoreAdd", "store, key, delta"),
    NO_GLOO("distStoreCheck", "store, key"),
    NO_GLOO("distStoreWait", "store, key, timeoutMs"),
    NO_GLOO("distStoreClose", "store"),
    NO_GLOO("distGroupNew", "store, rank, worldSize, timeoutMs, bindHost, threads"),
    NO_GLOO("distGroupDestroy", "group"),
    NO_GLOO("distFileStoreOpen", "path, worldSize, timeoutMs?"),
    NO_GLOO("distAllReduce", "group, tensor, op"),
    NO_GLOO("distAllGather", "group, outputs, tensor"),
    NO_GLOO("distBroadcast", "group, tensor, root"),
    NO_GLOO("distBarrier", "group"),
    NO_GLOO("distWait", "work, timeoutMs"),
    OP("distPending", "", { return num(env, 0); }),
    NO_GLOO("distSumWithGrad", "group, tensor, timeoutMs"),
    NO_GLOO("distSumNow", "group, tensor, timeoutMs"),
    NO_GLOO("distCounters", ""),
    NO_GLOO("distSyncBatchNorm", "group, input, weight, bias, eps, timeoutMs"),
    NO_GLOO("distReducerNew", "group, params, bucketSizes"),
    NO_GLOO("distReducerArm", "reducer"),
    NO_GLOO("distReducerFinish", "reducer, timeoutMs"),
    NO_GLOO("distReducerDrop", "reducer"),
};
#endif

}  // namespace

const std::vector<OpDef>& distOpTable() { return kDistOps; }

}  // namespace simclr
