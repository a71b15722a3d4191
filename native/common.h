// Shared pieces of the addon: the tensor handle, argument access with JS-side type
// errors, and conversions. The addon only moves tensors between JS and libtorch.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace simclr {

// Tensors live in a per-thread slot table; JavaScript holds a handle, a plain number
// that encodes the slot index and the slot's generation. Numbers cost nothing to make
// (no GC object, no finaliser per tensor); the generation makes a handle that outlived
// its dispose() fail cleanly instead of reaching another tensor. The GC safety net is
// on the TypeScript side, for tensors that leave every scope.
struct Slot {
  at::Tensor tensor;
  uint32_t generation = 0;
  int64_t accounted = 0;  // host bytes counted for this tensor
};

// One entry of the op table: a JS-visible name, its parameter names (comma separated,
// used in TypeErrors) and the body.
class Args;
struct OpDef {
  const char* name;
  const char* params;
  Napi::Value (*fn)(Args&);
};

const std::vector<OpDef>& opTable();

Napi::Value wrap(Napi::Env env, at::Tensor tensor);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& tensors);
Napi::Value intList(Napi::Env env, at::IntArrayRef values);
// Frees the tensor behind a handle; false when the handle was already disposed.
bool release(Napi::Env env, double handle);
bool isLive(double handle);
int64_t liveTensorCount();
int64_t liveTensorBytes();

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType type);

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const OpDef& def);

  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  bool has(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined() && !info_[i].IsNull(); }
  Napi::Value raw(size_t i) const { return info_[i]; }

  double handle(size_t i) const;
  const at::Tensor& t(size_t i) const;
  c10::optional<at::Tensor> ot(size_t i) const;
  std::vector<at::Tensor> ts(size_t i) const;
  double d(size_t i) const;
  c10::optional<double> od(size_t i) const;
  int64_t i(size_t i) const;
  c10::optional<int64_t> oi(size_t i) const;
  bool b(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  std::string s(size_t i) const;
  at::ScalarType dtype(size_t i) const;
  at::Device device(size_t i) const;
  // Tensor options from a dtype at i (default float32) and a device at i + 1 (default cpu).
  at::TensorOptions options(size_t i) const;

  [[noreturn]] void typeError(size_t i, const char* expected) const;
  std::string paramName(size_t i) const;

 private:
  const Napi::CallbackInfo& info_;
  const OpDef& def_;
};

}  // namespace simclr
