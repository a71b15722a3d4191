// Module set-up, tensor handles, argument parsing and error translation.
#include "common.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <climits>
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

int64_t hostBytes(const at::Tensor& t) {
  if (!t.defined() || !t.device().is_cpu()) return 0;
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

std::string describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_object: return v.IsArray() ? "an array" : "an object";
    case napi_function: return "a function";
    default: return "a value of another type";
  }
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
  slot->generation = nextGeneration(slot->generation);
  gLiveTensors--;
  if (slot->accounted) {
    account(env, -slot->accounted);
    slot->accounted = 0;
  }
  tFree.push_back(static_cast<uint32_t>(slot - tSlots.data()));
  return true;
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
  slot.accounted = hostBytes(tensor);
  slot.tensor = std::move(tensor);
  gLiveTensors++;
  if (slot.accounted) account(env, slot.accounted);
  double handle = static_cast<double>((static_cast<uint64_t>(slot.generation) << kIndexBits) | index);
  return Napi::Number::New(env, handle);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& tensors) {
  auto arr = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) arr.Set(static_cast<uint32_t>(i), wrap(env, tensors[i]));
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
Args::Args(const Napi::CallbackInfo& info, const OpDef& def) : info_(info), def_(def) {
  size_t count = def.params[0] ? 1 : 0;
  for (const char* c = def.params; *c; ++c) count += (*c == ',');
  if (info.Length() > count) {
    std::ostringstream msg;
    msg << def.name << ": expected at most " << count << " argument(s) (" << def.params << "), got " << info.Length();
    throw Napi::TypeError::New(info.Env(), msg.str());
  }
}

std::string Args::paramName(size_t i) const {
  auto names = splitNames(def_.params);
  return i < names.size() ? names[i] : std::to_string(i);
}

void Args::typeError(size_t i, const char* expected) const {
  std::ostringstream msg;
  std::string name = paramName(i);
  if (!name.empty() && name.back() == '?') name.pop_back();
  msg << def_.name << ": argument '" << name << "' must be " << expected << ", got "
      << (i < info_.Length() ? describe(info_[i]) : std::string("nothing"));
  throw Napi::TypeError::New(info_.Env(), msg.str());
}

double Args::handle(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) typeError(i, "a Tensor");
  return info_[i].As<Napi::Number>().DoubleValue();
}

const at::Tensor& Args::t(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) typeError(i, "a Tensor");
  double h = info_[i].As<Napi::Number>().DoubleValue();
  Slot* slot = find(h);
  if (slot == nullptr) {
    if (!looksLikeHandle(h)) typeError(i, "a Tensor");
    throw Napi::Error::New(info_.Env(), std::string(def_.name) + ": argument '" + paramName(i) + "' is a tensor that was already disposed (or not a tensor handle)");
  }
  return slot->tensor;
}

c10::optional<at::Tensor> Args::ot(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return t(i);
}

std::vector<at::Tensor> Args::ts(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsArray()) typeError(i, "an array of Tensors");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber() || !looksLikeHandle(v.As<Napi::Number>().DoubleValue())) typeError(i, "an array of Tensors");
    Slot* slot = find(v.As<Napi::Number>().DoubleValue());
    if (slot == nullptr) throw Napi::Error::New(info_.Env(), std::string(def_.name) + ": a tensor in the list was already disposed");
    out.push_back(slot->tensor);
  }
  return out;
}

double Args::d(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) typeError(i, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> Args::od(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return d(i);
}

int64_t Args::i(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsNumber()) typeError(i, "an integer");
  double v = info_[i].As<Napi::Number>().DoubleValue();
  if (!(v == static_cast<double>(static_cast<int64_t>(v))) || v > 9007199254740991.0 || v < -9007199254740991.0) typeError(i, "an integer");
  return static_cast<int64_t>(v);
}

c10::optional<int64_t> Args::oi(size_t i) const {
  if (!has(i)) return c10::nullopt;
  return this->i(i);
}

bool Args::b(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsBoolean()) typeError(i, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsArray()) typeError(i, "an array of integers");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Value v = arr.Get(k);
    if (!v.IsNumber()) typeError(i, "an array of integers");
    double x = v.As<Napi::Number>().DoubleValue();
    if (!(x == static_cast<double>(static_cast<int64_t>(x))) || x > 9007199254740991.0 || x < -9007199254740991.0) typeError(i, "an array of integers");
    out[k] = static_cast<int64_t>(x);
  }
  return out;
}

std::string Args::s(size_t i) const {
  if (i >= info_.Length() || !info_[i].IsString()) typeError(i, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

at::ScalarType Args::dtype(size_t i) const {
  if (!has(i)) return at::kFloat;
  if (!info_[i].IsString()) typeError(i, "a dtype name");
  try {
    return parseDtype(s(i));
  } catch (const std::invalid_argument&) {
    typeError(i, "one of float32, float64, float16, bfloat16, uint8, int8, int16, int32, int64, bool");
  }
}

at::Device Args::device(size_t i) const {
  if (!has(i)) return at::Device(at::kCPU);
  std::string name = s(i);
  try {
    return at::Device(name);
  } catch (const c10::Error&) {
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
  exports.DefineProperty(Napi::PropertyDescriptor::Accessor("allocator", allocatorState, napi_enumerable));
  exports.Set("tuneAllocator", Napi::Function::New(env, tuneAllocatorOp, "tuneAllocator"));
  for (const OpDef& def : opTable()) {
    exports.Set(def.name, Napi::Function::New(env, dispatch, def.name, const_cast<OpDef*>(&def)));
  }
#ifdef SIMCLR_LIBTORCH_INFO
  exports.Set("buildInfo", Napi::String::New(env, decodeHex(SIMCLR_STR(SIMCLR_LIBTORCH_INFO))));
#else
  exports.Set("buildInfo", Napi::String::New(env, "{}"));
#endif
  exports.Set("headerVersion", Napi::String::New(env, TORCH_VERSION));
  return exports;
}

NODE_API_MODULE(simclr_native, InitAddon)
