// Module set-up, tensor handles, argument parsing and error translation.
#include "common.h"

#include <ATen/Parallel.h>
#include <c10/util/Logging.h>
#include <torch/version.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <climits>
#include <cmath>
#include <functional>
#include <cstdlib>
#include <new>
#include <sstream>

namespace simclr {

namespace {
std::atomic<int64_t> gLiveTensors{0};
std::atomic<int64_t> gLiveBytes{0};

// V8 is told about tensor memory in batches: a call per tiny tensor would cost more than
// the op itself, and the GC only needs the figure to be right to within a few hundred KB.
constexpr int64_t kReportThreshold = 256 * 1024;
int64_t gUnreported = 0;

void account(Napi::Env env, int64_t delta) {
  gLiveBytes += delta;
  gUnreported += delta;
  if (gUnreported >= kReportThreshold || gUnreported <= -kReportThreshold) {
    Napi::MemoryManagement::AdjustExternalMemory(env, gUnreported);
    gUnreported = 0;
  }
}

// Host and GPU memory alike: a GPU tensor that escaped tidy() is only freed by a garbage
// collection, which V8 starts sooner the more external memory it is told of.
int64_t trackedBytes(const at::Tensor& t) {
  if (!t.defined() || t.device().is_meta()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

std::vector<std::string> splitNames(const char* params) {
  std::vector<std::string> names;
  std::stringstream ss(params);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(' ');
    size_t b = item.find_last_not_of(' ');
    if (a != std::string::npos) names.push_back(item.substr(a, b - a + 1));
  }
  return names;
}

}  // namespace

int64_t liveTensorCount() { return gLiveTensors.load(); }
int64_t liveTensorBytes() { return gLiveBytes.load(); }

namespace {
constexpr uint64_t kIndexBits = 28;  // up to 268M live tensors per thread
constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
constexpr uint64_t kGenerationMask = (uint64_t{1} << (53 - kIndexBits)) - 1;  // handles stay exact doubles

thread_local std::vector<Slot> tSlots;
thread_local std::vector<uint32_t> tFree;

Slot* find(double handle) {
  if (!(handle >= 0) || handle > 9007199254740991.0) return nullptr;
  uint64_t h = static_cast<uint64_t>(handle);
  if (static_cast<double>(h) != handle) return nullptr;
  uint64_t index = h & kIndexMask;
  if (index >= tSlots.size()) return nullptr;
  Slot& slot = tSlots[index];
  if (slot.generation != (h >> kIndexBits) || !slot.tensor.defined()) return nullptr;
  return &slot;
}
}  // namespace

// Small integers never name a tensor: generation 0 is never used, so a number passed
// by mistake (a size, a scalar) is reported as a wrong argument.
bool looksLikeHandle(double handle) {
  if (!(handle >= 0) || handle > 9007199254740991.0) return false;
  uint64_t h = static_cast<uint64_t>(handle);
  return static_cast<double>(h) == handle && (h >> kIndexBits) != 0;
}

uint32_t nextGeneration(uint32_t g) {
  g = static_cast<uint32_t>((g + 1) & kGenerationMask);
  return g == 0 ? 1 : g;
}

bool isLive(double handle) { return find(handle) != nullptr; }

bool release(Napi::Env env, double handle) {
  Slot* slot = find(handle);
  if (slot == nullptr) return false;
  slot->tensor = at::Tensor();
  gLiveTensors--;
  if (slot->accounted) {
    account(env, -slot->accounted);
    slot->accounted = 0;
  }
  // A slot whose generations are spent is retired, never reused: a handle, however stale,
  // can then never name another tensor (a retired slot costs its 24 bytes, once every
  // 33 million reuses).
  if (slot->generation == kGenerationMask) return true;
  slot->generation = nextGeneration(slot->generation);
  tFree.push_back(static_cast<uint32_t>(slot - tSlots.data()));
  return true;
}

// For the test of retirement: the handle of the same tensor with its slot's generation set
// to the last but one, as if the slot had been reused 33 million times. The old handle dies.
double ageSlotForTest(double handle) {
  Slot* slot = find(handle);
  if (slot == nullptr) return -1;
  slot->generation = static_cast<uint32_t>(kGenerationMask - 1);
  return static_cast<double>((static_cast<uint64_t>(slot->generation) << kIndexBits) | static_cast<uint64_t>(slot - tSlots.data()));
}

Napi::Value wrap(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  uint32_t index;
  if (!tFree.empty()) {
    index = tFree.back();
    tFree.pop_back();
  } else {
    if (tSlots.size() > kIndexMask) throw std::runtime_error("too many live tensors");
    index = static_cast<uint32_t>(tSlots.size());
    tSlots.emplace_back();
    // Start each slot at a scattered generation, so handles are unlikely to repeat across runs.
    tSlots.back().generation = nextGeneration(static_cast<uint32_t>((index * 2654435761u) & kGenerationMask));
  }
  Slot& slot = tSlots[index];
  const int64_t bytes = trackedBytes(tensor);
  slot.accounted = bytes;
  slot.tensor = std::move(tensor);
  gLiveTensors++;
  const double handle = static_cast<double>((static_cast<uint64_t>(slot.generation) << kIndexBits) | index);
  // Last: telling V8 about memory may start a collection; no slot reference is held across it.
  if (bytes) account(env, bytes);
  return Napi::Number::New(env, handle);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& tensors) {
  // Every handle first: setting an element can run a setter on Array.prototype, and by then
  // all the native work is done.
  std::vector<Napi::Value> handles;
  handles.reserve(tensors.size());
  for (const at::Tensor& t : tensors) handles.push_back(wrap(env, t));
  auto arr = Napi::Array::New(env, handles.size());
  for (size_t i = 0; i < handles.size(); ++i) arr.Set(static_cast<uint32_t>(i), handles[i]);
  return arr;
}

Napi::Value intList(Napi::Env env, at::IntArrayRef values) {
  auto arr = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(values[i])));
  return arr;
}

at::ScalarType parseDtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "uint8") return at::kByte;
  if (name == "int8") return at::kChar;
  if (name == "int16") return at::kShort;
  if (name == "int32") return at::kInt;
  if (name == "int64") return at::kLong;
  if (name == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype '" + name + "'");
}

std::string dtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kByte: return "uint8";
    case at::kChar: return "int8";
    case at::kShort: return "int16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kBool: return "bool";
    default: return c10::toString(type);
  }
}

// ------------------------------------------------------------------ arguments
namespace {

// A double names an int64 only when it is integral and within 2^53 (exact in both);
// NaN, infinities, fractions and 1e300 are refused before any cast.
bool exactInt(double v, int64_t* out) {
  if (!(std::fabs(v) <= 9007199254740991.0) || std::trunc(v) != v) return false;
  *out = static_cast<int64_t>(v);
  return true;
}

[[noreturn]] void throwPending(Napi::Env env) { throw Napi::Error::New(env); }

void readBytes(Napi::Env env, napi_value value, ArgValue& out) {
  out.kind = ArgValue::kBytes;
  napi_value buffer = value;
  const uint8_t* data = nullptr;
  size_t length = 0;
  bool isTyped = false, isView = false;
  if (napi_is_typedarray(env, value, &isTyped) != napi_ok) throwPending(env);
  if (!isTyped && napi_is_dataview(env, value, &isView) != napi_ok) throwPending(env);
  if (isTyped) {
    out.what = "a typed array";
    napi_typedarray_type type;
    size_t count = 0, offset = 0;
    void* p = nullptr;
    if (napi_get_typedarray_info(env, value, &type, &count, &p, &buffer, &offset) != napi_ok) throwPending(env);
    size_t item = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: item = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: item = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: item = 8; break;
      default: item = 1;
    }
    data = static_cast<const uint8_t*>(p);
    length = count * item;
  } else if (isView) {
    out.what = "a DataView";
    void* p = nullptr;
    size_t offset = 0;
    if (napi_get_dataview_info(env, value, &length, &p, &buffer, &offset) != napi_ok) throwPending(env);
    data = static_cast<const uint8_t*>(p);
  } else {
    out.what = "an ArrayBuffer";
    void* p = nullptr;
    if (napi_get_arraybuffer_info(env, value, &p, &length) != napi_ok) throwPending(env);
    data = static_cast<const uint8_t*>(p);
  }
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok) throwPending(env);
  if (detached || (data == nullptr && length != 0)) {
    out.detached = true;
    out.what = "a detached buffer";
    return;
  }
  if (length) out.bytes.assign(data, data + length);
}

void readArray(const Napi::Array& arr, ArgValue& out) {
  out.kind = ArgValue::kArray;
  out.what = "an array";
  uint32_t n = arr.Length();
  if (n > Args::kMaxArrayLength) {
    out.bad = true;
    out.detail = "an array of " + std::to_string(n) + " elements (at most " + std::to_string(Args::kMaxArrayLength) + ")";
    return;
  }
  out.numbers.reserve(n);
  for (uint32_t k = 0; k < n; ++k) {
    Napi::Value e = arr.Get(k);  // may run a getter
    if (!e.IsNumber()) {
      out.bad = true;
      out.detail = "an array whose element " + std::to_string(k) + " is not a number";
      return;
    }
    out.numbers.push_back(e.As<Napi::Number>().DoubleValue());
  }
  uint32_t now = arr.Length();
  if (now != n) {
    out.bad = true;
    out.detail = "an array whose length changed from " + std::to_string(n) + " to " + std::to_string(now) + " while it was read";
  }
}

ArgValue snapshot(Napi::Env env, const Napi::Value& v) {
  ArgValue out;
  switch (v.Type()) {
    case napi_undefined: out.kind = ArgValue::kUndefined; out.what = "undefined"; break;
    case napi_null: out.kind = ArgValue::kNull; out.what = "null"; break;
    case napi_boolean: out.kind = ArgValue::kBoolean; out.what = "a boolean"; out.boolean = v.As<Napi::Boolean>().Value(); break;
    case napi_number: out.kind = ArgValue::kNumber; out.what = "a number"; out.number = v.As<Napi::Number>().DoubleValue(); break;
    case napi_string: out.kind = ArgValue::kString; out.what = "a string"; out.text = v.As<Napi::String>().Utf8Value(); break;
    case napi_object:
      if (v.IsArray()) readArray(v.As<Napi::Array>(), out);
      else if (v.IsTypedArray() || v.IsArrayBuffer() || v.IsDataView()) readBytes(env, v, out);
      else { out.kind = ArgValue::kOther; out.what = "an object"; }
      break;
    case napi_function: out.kind = ArgValue::kOther; out.what = "a function"; break;
    default: out.kind = ArgValue::kOther; out.what = "a value of another type"; break;
  }
  return out;
}

}  // namespace

Args::Args(const Napi::CallbackInfo& info, const OpDef& def) : env_(info.Env()), def_(def) {
  size_t count = def.params[0] ? 1 : 0;
  for (const char* c = def.params; *c; ++c) count += (*c == ',');
  if (info.Length() > count) {
    std::ostringstream msg;
    msg << def.name << ": expected at most " << count << " argument(s) (" << def.params << "), got " << info.Length();
    throw Napi::TypeError::New(info.Env(), msg.str());
  }
  // Each argument is read once, in order; getters may run here and only here.
  values_.reserve(info.Length());
  for (size_t i = 0; i < info.Length(); ++i) values_.push_back(snapshot(env_, info[i]));
}

const ArgValue& Args::at(size_t i) const {
  static const ArgValue missing;
  return i < values_.size() ? values_[i] : missing;
}

std::string Args::paramName(size_t i) const {
  auto names = splitNames(def_.params);
  std::string name = i < names.size() ? names[i] : std::to_string(i);
  if (!name.empty() && name.back() == '?') name.pop_back();
  return name;
}

void Args::typeError(size_t i, const char* expected) const {
  std::ostringstream msg;
  msg << def_.name << ": argument '" << paramName(i) << "' must be " << expected << ", got " << at(i).describe();
  throw Napi::TypeError::New(env_, msg.str());
}

void Args::typeErrorWhy(size_t i, const std::string& why) const {
  throw Napi::TypeError::New(env_, std::string(def_.name) + ": argument '" + paramName(i) + "' " + why);
}

double Args::handle(size_t i) const {
  if (at(i).kind != ArgValue::kNumber) typeError(i, "a Tensor");
  return at(i).number;
}

at::Tensor Args::t(size_t i) const {
  double h = handle(i);
  Slot* slot = find(h);
  if (slot == nullptr) {
    if (!looksLikeHandle(h)) typeError(i, "a Tensor");
    throw Napi::Error::New(env_, std::string(def_.name) + ": argument '" + paramName(i) + "' is a tensor that was already disposed (or not a tensor handle)");
  }
  return slot->tensor;
}

c10::optional<at::Tensor> Args::ot(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return t(i);
}

std::vector<at::Tensor> Args::ts(size_t i) const {
  const ArgValue& v = at(i);
  if (v.kind != ArgValue::kArray || v.bad) typeError(i, "an array of Tensors");
  std::vector<at::Tensor> out;
  out.reserve(v.numbers.size());
  for (double h : v.numbers) {
    if (!looksLikeHandle(h)) typeError(i, "an array of Tensors");
    Slot* slot = find(h);
    if (slot == nullptr) throw Napi::Error::New(env_, std::string(def_.name) + ": a tensor in the list was already disposed");
    out.push_back(slot->tensor);
  }
  return out;
}

double Args::d(size_t i) const {
  if (at(i).kind != ArgValue::kNumber) typeError(i, "a number");
  return at(i).number;
}

c10::optional<double> Args::od(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return d(i);
}

int64_t Args::i(size_t i) const {
  int64_t out = 0;
  if (at(i).kind != ArgValue::kNumber || !exactInt(at(i).number, &out)) typeError(i, "an integer");
  return out;
}

c10::optional<int64_t> Args::oi(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return this->i(i);
}

bool Args::b(size_t i) const {
  if (at(i).kind != ArgValue::kBoolean) typeError(i, "a boolean");
  return at(i).boolean;
}

std::vector<int64_t> Args::ints(size_t i) const {
  const ArgValue& v = at(i);
  if (v.kind != ArgValue::kArray || v.bad) typeError(i, "an array of integers");
  std::vector<int64_t> out(v.numbers.size());
  for (size_t k = 0; k < out.size(); ++k) {
    if (!exactInt(v.numbers[k], &out[k])) typeError(i, "an array of integers");
  }
  return out;
}

std::string Args::s(size_t i) const {
  if (at(i).kind != ArgValue::kString) typeError(i, "a string");
  return at(i).text;
}

const std::vector<uint8_t>& Args::bytes(size_t i, const char* expected) const {
  const ArgValue& v = at(i);
  if (v.kind != ArgValue::kBytes) typeError(i, expected);
  if (v.detached) typeErrorWhy(i, "is a detached buffer (its ArrayBuffer was transferred)");
  return v.bytes;
}

at::ScalarType Args::dtype(size_t i) const {
  if (!has(i)) return at::kFloat;
  if (at(i).kind != ArgValue::kString) typeError(i, "a dtype name");
  try {
    return parseDtype(at(i).text);
  } catch (const std::invalid_argument&) {
    typeError(i, "one of float32, float64, float16, bfloat16, uint8, int8, int16, int32, int64, bool");
  }
}

at::Device Args::device(size_t i) const {
  if (!has(i)) return at::Device(at::kCPU);
  std::string name = s(i);
  try {
    return at::Device(name);
  } catch (const std::exception&) {
    typeError(i, "a device name such as 'cpu', 'cuda' or 'cuda:1'");
  }
}

at::TensorOptions Args::options(size_t i) const {
  return at::TensorOptions().dtype(dtype(i)).device(device(i + 1));
}

// ------------------------------------------------------------------ dispatch
namespace {

Napi::Value dispatch(const Napi::CallbackInfo& info) {
  const auto* def = static_cast<const OpDef*>(info.Data());
  Napi::Env env = info.Env();
  try {
    Args args(info, *def);
    return def->fn(args);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::TypeError& e) {
    throw Napi::TypeError::New(env, std::string(def->name) + ": " + e.what_without_backtrace());
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, std::string(def->name) + ": " + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(env, std::string(def->name) + ": out of memory");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string(def->name) + ": " + e.what());
  }
}

std::string decodeHex(const char* hex) {
  std::string out;
  if (*hex == 'x') ++hex;
  for (; hex[0] && hex[1]; hex += 2) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    out.push_back(static_cast<char>(nibble(hex[0]) * 16 + nibble(hex[1])));
  }
  return out;
}

#define SIMCLR_STR2(x) #x
#define SIMCLR_STR(x) SIMCLR_STR2(x)

}  // namespace
}  // namespace simclr

// glibc serves allocations over its mmap threshold with fresh pages and unmaps them on
// free, so each training step faults in its activations again (about 1.4M page faults
// per ResNet-18 step at batch 256, a quarter of the step). Keeping freed memory in the
// heap lets the next step reuse it. This changes the whole process (a server embedding
// the library would never give memory back), so it runs only when asked for, through
// tuneAllocator() (tuneProcess() in TypeScript). SIMCLR_SYSTEM_MALLOC=1 keeps glibc's defaults.
#if defined(__GLIBC__)
static std::atomic<const char*> gAllocator{"glibc defaults"};
#else
static std::atomic<const char*> gAllocator{"system defaults"};
#endif

static const char* tuneAllocator() {
#if defined(__GLIBC__)
  const char* opt = std::getenv("SIMCLR_SYSTEM_MALLOC");
  if (opt != nullptr && opt[0] == '1') return "glibc defaults (SIMCLR_SYSTEM_MALLOC=1)";
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
  return "glibc heap, freed memory kept for reuse";
#else
  return "system defaults";
#endif
}

static Napi::Value tuneAllocatorOp(const Napi::CallbackInfo& info) {
  gAllocator = tuneAllocator();
  return Napi::String::New(info.Env(), gAllocator.load());
}

// `allocator` is read at each access, so it tells the state now, not at load.
static Napi::Value allocatorState(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), gAllocator.load());
}

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace simclr;
  // libtorch's errors reach JavaScript without their C++ backtrace (what_without_backtrace),
  // and libtorch 1.13 symbolises one for every error it raises: milliseconds per error, paid
  // by any loop that catches them (a failed check, a fuzzed call). None is fetched.
  c10::SetStackTraceFetcher(std::function<std::string()>([] { return std::string(); }));
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor("allocator", allocatorState, napi_enumerable));
  exports.Set("tuneAllocator", Napi::Function::New(env, tuneAllocatorOp, "tuneAllocator"));
  // The op table's parameter lists, so that a test can hold the TypeScript declarations to it.
  Napi::Object params = Napi::Object::New(env);
  for (const auto* table : {&opTable(), &distOpTable()}) {
    for (const OpDef& def : *table) {
      exports.Set(def.name, Napi::Function::New(env, dispatch, def.name, const_cast<OpDef*>(&def)));
      params.Set(def.name, Napi::String::New(env, def.params));
    }
  }
  exports.Set("opParams", params);
#ifdef SIMCLR_LIBTORCH_INFO
  exports.Set("buildInfo", Napi::String::New(env, decodeHex(SIMCLR_STR(SIMCLR_LIBTORCH_INFO))));
#else
  exports.Set("buildInfo", Napi::String::New(env, "{}"));
#endif
  exports.Set("headerVersion", Napi::String::New(env, TORCH_VERSION));
  return exports;
}

NODE_API_MODULE(simclr_native, InitAddon)
