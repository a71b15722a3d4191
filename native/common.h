// Shared pieces of the addon: the tensor handle, argument access with JS-side type
// errors, and conversions. The addon only moves tensors between JS and libtorch.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>
#include <c10/util/Optional.h>  // c10::optional: in 2.x only an alias of std::optional, not guaranteed via ATen.h
#include <c10/util/SmallVector.h>
#include <torch/version.h>

// Version guards for the libtorch APIs that changed between 1.13 and PyTorch 2.x.
#define SIMCLR_TORCH_AT_LEAST(MAJOR, MINOR) \
  (TORCH_VERSION_MAJOR > (MAJOR) || (TORCH_VERSION_MAJOR == (MAJOR) && TORCH_VERSION_MINOR >= (MINOR)))

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
// The collectives (native/dist.cc): c10d's TCPStore, Gloo process group and work items.
const std::vector<OpDef>& distOpTable();

Napi::Value wrap(Napi::Env env, at::Tensor tensor);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& tensors);
Napi::Value intList(Napi::Env env, at::IntArrayRef values);
// Frees the tensor behind a handle; false when the handle was already disposed.
bool release(Napi::Env env, double handle);
bool isLive(double handle);
// Test hook: the tensor's slot aged to its last generation but one; returns the new handle.
double ageSlotForTest(double handle);
int64_t liveTensorCount();
int64_t liveTensorBytes();

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType type);

// One JavaScript argument, read exactly once when the op is entered. Accessors work on
// these copies only, so no JavaScript (a getter, a Proxy trap) can run once an op body
// starts: a getter cannot shrink a list being read, dispose a tensor in use or detach a
// buffer being copied.
struct ArgValue {
  enum Kind : uint8_t { kMissing, kUndefined, kNull, kBoolean, kNumber, kString, kArray, kBytes, kOther };
  Kind kind = kMissing;
  // For messages: "a number", "an array", ... (static text, no allocation per argument),
  // or a longer account in `detail` where one is needed.
  const char* what = "nothing";
  std::string detail;
  std::string describe() const { return detail.empty() ? std::string(what) : detail; }
  bool boolean = false;
  double number = 0;
  std::string text;
  // Arrays: the elements, read with the length fixed at entry. Numbers only; the first
  // element of another type, a length beyond kMaxArrayLength or a length that changed
  // while the elements were read marks the list bad (`what` says why where useful).
  std::vector<double> numbers;
  bool bad = false;
  // Typed arrays, ArrayBuffers, DataViews: a copy of the bytes.
  std::vector<uint8_t> bytes;
  bool detached = false;
};

class Args {
 public:
  // Arrays longer than this are refused unread (a sparse [] with length 2^32 - 1 would
  // otherwise cost minutes of getter calls and gigabytes).
  static constexpr uint32_t kMaxArrayLength = 1u << 20;

  // Reads every argument into a snapshot (in order, each once); may run JavaScript (getters).
  Args(const Napi::CallbackInfo& info, const OpDef& def);

  Napi::Env env() const { return env_; }
  size_t size() const { return values_.size(); }
  bool has(size_t i) const { return i < values_.size() && values_[i].kind != ArgValue::kUndefined && values_[i].kind != ArgValue::kNull; }

  double handle(size_t i) const;
  // The handle at i as a JS number (ops that return their first argument).
  Napi::Value self(size_t i) const { return Napi::Number::New(env_, handle(i)); }
  at::Tensor t(size_t i) const;
  c10::optional<at::Tensor> ot(size_t i) const;
  std::vector<at::Tensor> ts(size_t i) const;
  double d(size_t i) const;
  c10::optional<double> od(size_t i) const;
  int64_t i(size_t i) const;
  c10::optional<int64_t> oi(size_t i) const;
  bool b(size_t i) const;
  std::vector<int64_t> ints(size_t i) const;
  std::string s(size_t i) const;
  // The copied bytes of a typed array, Buffer, ArrayBuffer or DataView.
  const std::vector<uint8_t>& bytes(size_t i, const char* expected) const;
  at::ScalarType dtype(size_t i) const;
  at::Device device(size_t i) const;
  // Tensor options from a dtype at i (default float32) and a device at i + 1 (default cpu).
  at::TensorOptions options(size_t i) const;

  [[noreturn]] void typeError(size_t i, const char* expected) const;
  [[noreturn]] void typeErrorWhy(size_t i, const std::string& why) const;
  std::string paramName(size_t i) const;

 private:
  const ArgValue& at(size_t i) const;
  Napi::Env env_;
  const OpDef& def_;
  // Most ops take a handful of arguments: kept inline, no heap allocation per call.
  c10::SmallVector<ArgValue, 8> values_;
};

}  // namespace simclr
