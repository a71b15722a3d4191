// c10d's collectives for JavaScript: a TCPStore (the rendezvous), a Gloo process group on
// it, and the collectives as asynchronous work items that JavaScript waits for with a
// timeout. Stores, groups and work items are named by small numbers (registries below),
// never by pointers, so a stale or made-up number fails cleanly. What a worker does with
// them (buckets, gathered losses, synchronized batch norm) is TypeScript's.
#include "common.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>

#ifdef SIMCLR_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>
#endif

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

auto& stores = *new Registry<c10::intrusive_ptr<c10d::TCPStore>>(1, "store");
auto& groups = *new Registry<c10::intrusive_ptr<c10d::ProcessGroupGloo>>(1, "process group");
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

Napi::Value addWork(Napi::Env env, c10::intrusive_ptr<c10d::Work> work, std::vector<at::Tensor> tensors,
                    std::vector<std::vector<at::Tensor>> outputs = {}) {
  return num(env, static_cast<double>(works.add(WorkEntry{std::move(work), std::move(tensors), std::move(outputs)})));
}

// Sums a tensor over the workers, waiting at most `timeout`; throws what Gloo failed with.
at::Tensor sumOverWorkers(int64_t groupId, const at::Tensor& x, int64_t timeoutMs) {
  auto it = groups.items.find(groupId);
  TORCH_CHECK(it != groups.items.end(), "the process group was destroyed before the gradient reached it");
  std::vector<at::Tensor> ts{x.detach().contiguous().clone()};
  auto work = it->second->allreduce(ts);
  work->wait(std::chrono::milliseconds(timeoutMs));
  return ts[0];
}

// The autograd-aware all-reduce (sum): y = sum over workers of x; the gradient of x is the
// sum over workers of y's gradient. Synchronized batch norm and the gathered projections
// are built from it in TypeScript.
struct SumOverWorkers : public torch::autograd::Function<SumOverWorkers> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t groupId, int64_t timeoutMs) {
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["timeout"] = timeoutMs;
    return sumOverWorkers(groupId, x, timeoutMs);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    at::Tensor g = sumOverWorkers(ctx->saved_data["group"].toInt(), grads[0], ctx->saved_data["timeout"].toInt());
    return {g, at::Tensor(), at::Tensor()};
  }
};

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

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
      return num(env, static_cast<double>(stores.add(c10::make_intrusive<c10d::TCPStore>(host, opts))));
    }),
    OP("distStorePort", "store", { return num(env, stores.get(a, 0)->getPort()); }),
    OP("distStoreSet", "store, key, value", {
      auto& s = stores.get(a, 0);
      s->set(a.s(1), bytesOf(a.s(2)));
      return env.Undefined();
    }),
    OP("distStoreGet", "store, key", {
      auto& s = stores.get(a, 0);
      std::vector<uint8_t> v = s->get(a.s(1));
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
      s->wait({key}, timeoutArg(a, 2));
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
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank), static_cast<int>(size), opts);
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
      auto work = pg->allgather(outputs, in);
      return addWork(env, work, in, outputs);
    }),
    OP("distBroadcast", "group, tensor, root", {
      auto& pg = groups.get(a, 0);
      std::vector<at::Tensor> ts{commTensor(a, 1)};
      c10d::BroadcastOptions o;
      o.rootRank = rangedInt(a, 2, 0, pg->getSize() - 1, "a root rank between 0 and worldSize - 1");
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
      work->wait(timeout);
      return env.Undefined();
    }),
    OP("distPending", "", { return num(env, static_cast<double>(works.items.size())); }),
    // Blocking, and recorded by autograd: the backward pass sums the gradient over workers.
    OP("distSumWithGrad", "group, tensor, timeoutMs", {
      int64_t id = a.i(0);
      groups.get(a, 0);
      at::Tensor x = a.t(1);
      if (!x.device().is_cpu() || x.layout() != at::kStrided) a.typeErrorWhy(1, "must be a dense CPU tensor (Gloo)");
      int64_t ms = timeoutArg(a, 2).count();
      return wrap(env, SumOverWorkers::apply(x, id, ms));
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
    NO_GLOO("distAllReduce", "group, tensor, op"),
    NO_GLOO("distAllGather", "group, outputs, tensor"),
    NO_GLOO("distBroadcast", "group, tensor, root"),
    NO_GLOO("distBarrier", "group"),
    NO_GLOO("distWait", "work, timeoutMs"),
    OP("distPending", "", { return num(env, 0); }),
    NO_GLOO("distSumWithGrad", "group, tensor, timeoutMs"),
};
#endif

}  // namespace

const std::vector<OpDef>& distOpTable() { return kDistOps; }

}  // namespace simclr
