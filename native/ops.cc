// The one table of libtorch operations exposed to JavaScript. Each entry is a name,
// its parameter names (for error messages) and a one-line body. No method logic here.
#include "common.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <cmath>
#include <cstring>
#include <dlfcn.h>
#include <limits>

namespace simclr {
namespace {

using T = at::Tensor;

#define OP(NAME, PARAMS, ...) \
  OpDef { NAME, PARAMS, [](Args& a) -> Napi::Value { Napi::Env env = a.env(); (void)env; __VA_ARGS__ } }

#define RET(EXPR) return wrap(env, (EXPR));
#define RET_SELF(EXPR) { EXPR; return a.self(0); }

Napi::Value num(Napi::Env env, double v) { return Napi::Number::New(env, v); }
Napi::Value boolean(Napi::Env env, bool v) { return Napi::Boolean::New(env, v); }
Napi::Value pair(Napi::Env env, const std::tuple<T, T>& t) { return wrapList(env, {std::get<0>(t), std::get<1>(t)}); }

// Integral tensors get integral scalars, so in-place updates keep their dtype. The range
// is checked before the cast (NaN or 1e300 would make the cast undefined).
at::Scalar scalarFor(const T& t, double v) {
  if (!at::isFloatingType(t.scalar_type()) && std::fabs(v) <= 9007199254740991.0 && std::trunc(v) == v) return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

int64_t checkedNumel(Args& a, const std::vector<int64_t>& shape, size_t argIndex) {
  int64_t n = 1;
  for (int64_t s : shape) {
    if (s < 0) a.typeError(argIndex, "a shape of non-negative integers");
    if (__builtin_mul_overflow(n, s, &n)) a.typeError(argIndex, "a shape whose element count fits in 64 bits");
  }
  return n;
}

// Copies raw little-endian bytes (any typed array or Buffer, copied when the op was
// entered) into a new CPU tensor.
Napi::Value fromBytes(Args& a) {
  Napi::Env env = a.env();
  const std::vector<uint8_t>& data = a.bytes(0, "a typed array, Buffer or ArrayBuffer");
  size_t length = data.size();
  std::vector<int64_t> shape = a.ints(1);
  at::ScalarType type = a.dtype(2);
  int64_t numel = checkedNumel(a, shape, 1);
  int64_t itemSize = static_cast<int64_t>(c10::elementSize(type));
  int64_t bytes = 0;
  if (__builtin_mul_overflow(numel, itemSize, &bytes) || static_cast<uint64_t>(bytes) != length) {
    throw Napi::RangeError::New(env, "fromBytes: " + std::to_string(length) + " bytes given, but shape and dtype " + dtypeName(type) +
                                         " need " + std::to_string(numel) + " x " + std::to_string(itemSize));
  }
  T out = at::empty(shape, at::TensorOptions().dtype(type));
  if (bytes) std::memcpy(out.data_ptr(), data.data(), static_cast<size_t>(bytes));
  // A bool is one byte holding 0 or 1; kernels may index with it, so other bytes become 1.
  if (type == at::kBool) {
    auto* p = static_cast<uint8_t*>(out.data_ptr());
    for (int64_t k = 0; k < bytes; ++k) p[k] = p[k] != 0;
  }
  return wrap(env, out);
}

Napi::Value toBytes(Args& a) {
  Napi::Env env = a.env();
  T t = a.t(0).detach().to(at::kCPU).contiguous();
  size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  auto buf = Napi::Buffer<uint8_t>::New(env, bytes);
  if (bytes) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  return buf;
}

at::MemoryFormat memoryFormat(Args& a, size_t i) {
  if (!a.has(i)) return at::MemoryFormat::Contiguous;
  std::string f = a.s(i);
  if (f == "contiguous") return at::MemoryFormat::Contiguous;
  if (f == "channels_last") return at::MemoryFormat::ChannelsLast;
  if (f == "preserve") return at::MemoryFormat::Preserve;
  a.typeError(i, "'contiguous', 'channels_last' or 'preserve'");
}

int64_t reduction(Args& a, size_t i) {
  if (!a.has(i)) return at::Reduction::Mean;
  std::string r = a.s(i);
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  if (r == "none") return at::Reduction::None;
  a.typeError(i, "'mean', 'sum' or 'none'");
}

int64_t interpolation(Args& a, size_t i) {
  std::string m = a.has(i) ? a.s(i) : "bilinear";
  if (m == "bilinear") return 0;
  if (m == "nearest") return 1;
  if (m == "bicubic") return 2;
  a.typeError(i, "'bilinear', 'nearest' or 'bicubic'");
}

int64_t padding(Args& a, size_t i) {
  std::string m = a.has(i) ? a.s(i) : "zeros";
  if (m == "zeros") return 0;
  if (m == "border") return 1;
  if (m == "reflection") return 2;
  a.typeError(i, "'zeros', 'border' or 'reflection'");
}

c10::DeviceType autocastDevice(Args& a, size_t i) {
  std::string d = a.s(i);
  if (d == "cpu") return c10::DeviceType::CPU;
  if (d == "cuda") return c10::DeviceType::CUDA;
  a.typeError(i, "'cpu' or 'cuda'");
}

at::Generator& cpuGenerator() {
  static at::Generator gen = at::detail::getDefaultCPUGenerator();
  return gen;
}

// CPUGeneratorImpl::set_state reads numel() bytes from data_ptr() and accepts two sizes;
// only a state as getRngState makes it (defined, CPU, uint8, contiguous, that size) is
// let through. Call with the generator's mutex held.
void checkRngState(const T& state) {
  TORCH_CHECK_TYPE(state.defined() && state.layout() == at::kStrided && state.device().is_cpu() && state.scalar_type() == at::kByte,
                   "the state must be a CPU uint8 tensor (from getRngState)");
  TORCH_CHECK(state.is_contiguous() && state.dim() == 1 && !state.is_neg() && !state.is_conj(), "the state must be a contiguous 1-d tensor");
  static const int64_t size = cpuGenerator().get_state().numel();
  TORCH_CHECK(state.numel() == size && state.storage().nbytes() >= static_cast<size_t>(state.storage_offset() + size),
              "the state must have exactly ", size, " bytes, got ", state.numel());
}

// What PyTorch's `.grad` setter checks: a tensor of the same dtype, layout, device and shape.
void checkGrad(const T& t, const T& g) {
  TORCH_CHECK(!t.is_same(g), "a tensor cannot be its own gradient");
  TORCH_CHECK_TYPE(g.scalar_type() == t.scalar_type(), "the gradient has dtype ", dtypeName(g.scalar_type()), " but the tensor has dtype ",
                   dtypeName(t.scalar_type()));
  TORCH_CHECK_TYPE(g.layout() == t.layout(), "the gradient has a different layout from the tensor");
  TORCH_CHECK(g.device() == t.device(), "the gradient is on ", g.device().str(), " but the tensor is on ", t.device().str());
  TORCH_CHECK(g.sizes().equals(t.sizes()), "the gradient has shape ", g.sizes(), " but the tensor has shape ", t.sizes());
}

const std::vector<OpDef> kOps = {
    // ---- lifetime, memory, queries
    OP("dispose", "tensor", { return boolean(env, release(env, a.handle(0))); }),
    OP("isDisposed", "tensor", { return boolean(env, !isLive(a.handle(0))); }),
    OP("ageSlotForTest", "tensor", {
      a.t(0);  // a live tensor, or the usual error
      return num(env, ageSlotForTest(a.handle(0)));
    }),
    OP("liveTensors", "", { return num(env, static_cast<double>(liveTensorCount())); }),
    OP("liveBytes", "", { return num(env, static_cast<double>(liveTensorBytes())); }),
    OP("shape", "tensor", { return intList(env, a.t(0).sizes()); }),
    OP("strides", "tensor", { return intList(env, a.t(0).strides()); }),
    OP("dtype", "tensor", { return Napi::String::New(env, dtypeName(a.t(0).scalar_type())); }),
    OP("device", "tensor", { return Napi::String::New(env, a.t(0).device().str()); }),
    OP("numel", "tensor", { return num(env, static_cast<double>(a.t(0).numel())); }),
    OP("item", "tensor", { return num(env, a.t(0).item<double>()); }),
    OP("isContiguous", "tensor, memoryFormat?", { return boolean(env, a.t(0).is_contiguous(memoryFormat(a, 1))); }),
    OP("fromBytes", "bytes, shape, dtype", { return fromBytes(a); }),
    OP("toBytes", "tensor", { return toBytes(a); }),

    // ---- creation and random numbers (the default generator is seeded by manualSeed)
    OP("zeros", "shape, dtype?, device?", { RET(at::zeros(a.ints(0), a.options(1))) }),
    OP("ones", "shape, dtype?, device?", { RET(at::ones(a.ints(0), a.options(1))) }),
    OP("empty", "shape, dtype?, device?", { RET(at::empty(a.ints(0), a.options(1))) }),
    OP("full", "shape, value, dtype?, device?", { RET(at::full(a.ints(0), a.d(1), a.options(2))) }),
    OP("arange", "start, end, step, dtype?, device?", { RET(at::arange(a.d(0), a.d(1), a.d(2), a.options(3))) }),
    OP("linspace", "start, end, steps, dtype?, device?", { RET(at::linspace(a.d(0), a.d(1), a.i(2), a.options(3))) }),
    OP("eye", "n, dtype?, device?", { RET(at::eye(a.i(0), a.options(1))) }),
    OP("zerosLike", "tensor", { RET(at::zeros_like(a.t(0))) }),
    OP("onesLike", "tensor", { RET(at::ones_like(a.t(0))) }),
    OP("fullLike", "tensor, value", { RET(at::full_like(a.t(0), a.d(1))) }),
    OP("rand", "shape, dtype?, device?", { RET(at::rand(a.ints(0), a.options(1))) }),
    OP("randn", "shape, dtype?, device?", { RET(at::randn(a.ints(0), a.options(1))) }),
    OP("randint", "low, high, shape, dtype?, device?", {
      auto opts = a.has(3) ? a.options(3) : at::TensorOptions().dtype(at::kLong).device(a.device(4));
      RET(at::randint(a.i(0), a.i(1), a.ints(2), opts))
    }),
    OP("randperm", "n, device?", { RET(at::randperm(a.i(0), at::TensorOptions().dtype(at::kLong).device(a.device(1)))) }),
    OP("bernoulli", "probabilities", { RET(at::bernoulli(a.t(0))) }),
    OP("bernoulliP", "like, p", { RET(at::bernoulli(a.t(0), a.d(1))) }),
    OP("normal_", "tensor, mean, std", RET_SELF(a.t(0).normal_(a.d(1), a.d(2)))),
    OP("uniform_", "tensor, low, high", RET_SELF(a.t(0).uniform_(a.d(1), a.d(2)))),
    OP("manualSeed", "seed", { at::manual_seed(static_cast<uint64_t>(a.i(0))); return env.Undefined(); }),
    OP("getRngState", "", {
      std::lock_guard<std::mutex> lock(cpuGenerator().mutex());
      RET(cpuGenerator().get_state())
    }),
    OP("setRngState", "state", {
      T state = a.t(0);
      std::lock_guard<std::mutex> lock(cpuGenerator().mutex());
      checkRngState(state);
      cpuGenerator().set_state(state);
      return env.Undefined();
    }),

    // ---- conversion and layout
    OP("toDtype", "tensor, dtype", { RET(a.t(0).to(a.dtype(1))) }),
    OP("toDevice", "tensor, device", { RET(a.t(0).to(a.device(1))) }),
    OP("contiguous", "tensor, memoryFormat?", { RET(a.t(0).contiguous(memoryFormat(a, 1))) }),
    OP("clone", "tensor, memoryFormat?", { RET(a.t(0).clone(memoryFormat(a, 1))) }),
    OP("detach", "tensor", { RET(a.t(0).detach()) }),
    OP("reshape", "tensor, shape", { RET(a.t(0).reshape(a.ints(1))) }),
    OP("view", "tensor, shape", { RET(a.t(0).view(a.ints(1))) }),
    OP("permute", "tensor, dims", { RET(a.t(0).permute(a.ints(1))) }),
    OP("transpose", "tensor, dim0, dim1", { RET(a.t(0).transpose(a.i(1), a.i(2))) }),
    OP("flatten", "tensor, startDim, endDim", { RET(a.t(0).flatten(a.i(1), a.i(2))) }),
    OP("squeeze", "tensor, dim", { RET(a.t(0).squeeze(a.i(1))) }),
    OP("unsqueeze", "tensor, dim", { RET(a.t(0).unsqueeze(a.i(1))) }),
    OP("expand", "tensor, shape", { RET(a.t(0).expand(a.ints(1))) }),
    OP("repeat", "tensor, repeats", { RET(a.t(0).repeat(a.ints(1))) }),
    OP("narrow", "tensor, dim, start, length", { RET(a.t(0).narrow(a.i(1), a.i(2), a.i(3))) }),
    OP("slice", "tensor, dim, start, end, step", { RET(a.t(0).slice(a.i(1), a.i(2), a.i(3), a.i(4))) }),
    OP("select", "tensor, dim, index", { RET(a.t(0).select(a.i(1), a.i(2))) }),
    OP("indexSelect", "tensor, dim, index", { RET(at::index_select(a.t(0), a.i(1), a.t(2))) }),
    OP("gather", "tensor, dim, index", { RET(at::gather(a.t(0), a.i(1), a.t(2))) }),
    OP("scatter", "tensor, dim, index, source", { RET(at::scatter(a.t(0), a.i(1), a.t(2), a.t(3))) }),
    OP("scatterAdd", "tensor, dim, index, source", { RET(at::scatter_add(a.t(0), a.i(1), a.t(2), a.t(3))) }),
    OP("maskedSelect", "tensor, mask", { RET(at::masked_select(a.t(0), a.t(1))) }),
    OP("maskedFill", "tensor, mask, value", { RET(at::masked_fill(a.t(0), a.t(1), a.d(2))) }),
    OP("cat", "tensors, dim", { RET(at::cat(a.ts(0), a.i(1))) }),
    OP("stack", "tensors, dim", { RET(at::stack(a.ts(0), a.i(1))) }),
    OP("chunk", "tensor, chunks, dim", { return wrapList(env, a.t(0).chunk(a.i(1), a.i(2))); }),
    OP("split", "tensor, size, dim", { return wrapList(env, a.t(0).split(a.i(1), a.i(2))); }),
    OP("flip", "tensor, dims", { RET(at::flip(a.t(0), a.ints(1))) }),
    OP("roll", "tensor, shifts, dims", { RET(at::roll(a.t(0), a.ints(1), a.ints(2))) }),
    OP("diagonal", "tensor, offset, dim0, dim1", { RET(at::diagonal(a.t(0), a.i(1), a.i(2), a.i(3))) }),
    OP("tril", "tensor, diagonal", { RET(at::tril(a.t(0), a.i(1))) }),
    OP("oneHot", "labels, classes", { RET(at::one_hot(a.t(0), a.i(1))) }),

    // ---- elementwise arithmetic (broadcasting), with scalar forms
    OP("add", "a, b, alpha?", { RET(a.has(2) ? at::add(a.t(0), a.t(1), a.d(2)) : at::add(a.t(0), a.t(1))) }),
    OP("sub", "a, b, alpha?", { RET(a.has(2) ? at::sub(a.t(0), a.t(1), a.d(2)) : at::sub(a.t(0), a.t(1))) }),
    OP("mul", "a, b", { RET(at::mul(a.t(0), a.t(1))) }),
    OP("div", "a, b", { RET(at::div(a.t(0), a.t(1))) }),
    OP("addScalar", "tensor, value", { RET(at::add(a.t(0), scalarFor(a.t(0), a.d(1)))) }),
    OP("mulScalar", "tensor, value", { RET(at::mul(a.t(0), scalarFor(a.t(0), a.d(1)))) }),
    OP("divScalar", "tensor, value", { RET(at::div(a.t(0), a.d(1))) }),
    OP("rsubScalar", "tensor, value", { RET(at::rsub(a.t(0), a.d(1))) }),
    OP("pow", "tensor, exponent", { RET(at::pow(a.t(0), a.d(1))) }),
    OP("powTensor", "tensor, exponent", { RET(at::pow(a.t(0), a.t(1))) }),
    OP("neg", "tensor", { RET(at::neg(a.t(0))) }),
    OP("exp", "tensor", { RET(at::exp(a.t(0))) }),
    OP("log", "tensor", { RET(at::log(a.t(0))) }),
    OP("sqrt", "tensor", { RET(at::sqrt(a.t(0))) }),
    OP("rsqrt", "tensor", { RET(at::rsqrt(a.t(0))) }),
    OP("abs", "tensor", { RET(at::abs(a.t(0))) }),
    OP("tanh", "tensor", { RET(at::tanh(a.t(0))) }),
    OP("sin", "tensor", { RET(at::sin(a.t(0))) }),
    OP("cos", "tensor", { RET(at::cos(a.t(0))) }),
    OP("floor", "tensor", { RET(at::floor(a.t(0))) }),
    OP("round", "tensor", { RET(at::round(a.t(0))) }),
    OP("remainder", "tensor, divisor", { RET(at::remainder(a.t(0), a.d(1))) }),
    OP("maximum", "a, b", { RET(at::maximum(a.t(0), a.t(1))) }),
    OP("minimum", "a, b", { RET(at::minimum(a.t(0), a.t(1))) }),
    OP("clamp", "tensor, min?, max?", {
      c10::optional<at::Scalar> lo, hi;
      if (a.has(1)) lo = a.d(1);
      if (a.has(2)) hi = a.d(2);
      RET(at::clamp(a.t(0), lo, hi))
    }),
    OP("clampTensor", "tensor, min?, max?", { RET(at::clamp(a.t(0), a.ot(1), a.ot(2))) }),
    OP("where", "condition, a, b", { RET(at::where(a.t(0), a.t(1), a.t(2))) }),
    OP("lerp", "start, end, weight", { RET(at::lerp(a.t(0), a.t(1), a.t(2))) }),
    OP("compare", "a, op, b", {
      std::string op = a.s(1);
      T x = a.t(0);
      T y = a.t(2);
      if (op == "eq") RET(at::eq(x, y)) if (op == "ne") RET(at::ne(x, y)) if (op == "lt") RET(at::lt(x, y))
      if (op == "le") RET(at::le(x, y)) if (op == "gt") RET(at::gt(x, y)) if (op == "ge") RET(at::ge(x, y))
      a.typeError(1, "one of eq, ne, lt, le, gt, ge");
    }),
    OP("compareScalar", "a, op, value", {
      std::string op = a.s(1);
      T x = a.t(0);
      double y = a.d(2);
      if (op == "eq") RET(at::eq(x, y)) if (op == "ne") RET(at::ne(x, y)) if (op == "lt") RET(at::lt(x, y))
      if (op == "le") RET(at::le(x, y)) if (op == "gt") RET(at::gt(x, y)) if (op == "ge") RET(at::ge(x, y))
      a.typeError(1, "one of eq, ne, lt, le, gt, ge");
    }),
    OP("logicalNot", "tensor", { RET(at::logical_not(a.t(0))) }),
    OP("logicalAnd", "a, b", { RET(at::logical_and(a.t(0), a.t(1))) }),

    // ---- reductions
    OP("sumAll", "tensor", { RET(at::sum(a.t(0))) }),
    OP("sum", "tensor, dims, keepdim", { RET(at::sum(a.t(0), a.ints(1), a.b(2))) }),
    OP("meanAll", "tensor", { RET(at::mean(a.t(0))) }),
    OP("mean", "tensor, dims, keepdim", { RET(at::mean(a.t(0), a.ints(1), a.b(2))) }),
    OP("var", "tensor, dims, unbiased, keepdim", { RET(at::var(a.t(0), at::OptionalIntArrayRef(a.ints(1)), a.b(2), a.b(3))) }),
    OP("norm", "tensor, p, dims, keepdim", { RET(at::norm(a.t(0), at::Scalar(a.d(1)), a.ints(2), a.b(3))) }),
    OP("amax", "tensor, dims, keepdim", { RET(at::amax(a.t(0), a.ints(1), a.b(2))) }),
    OP("amin", "tensor, dims, keepdim", { RET(at::amin(a.t(0), a.ints(1), a.b(2))) }),
    OP("maxDim", "tensor, dim, keepdim", { return pair(env, at::max(a.t(0), a.i(1), a.b(2))); }),
    OP("argmax", "tensor, dim, keepdim", { RET(at::argmax(a.t(0), a.i(1), a.b(2))) }),
    OP("logsumexp", "tensor, dims, keepdim", { RET(at::logsumexp(a.t(0), a.ints(1), a.b(2))) }),
    OP("topk", "tensor, k, dim, largest, sorted", { return pair(env, at::topk(a.t(0), a.i(1), a.i(2), a.b(3), a.b(4))); }),
    OP("sort", "tensor, dim, descending", { return pair(env, at::sort(a.t(0), a.i(1), a.b(2))); }),

    // ---- linear algebra
    OP("matmul", "a, b", { RET(at::matmul(a.t(0), a.t(1))) }),
    OP("linear", "input, weight, bias?", { RET(at::linear(a.t(0), a.t(1), a.ot(2))) }),

    // ---- neural network ops
    OP("conv2d", "input, weight, bias?, stride, padding, dilation, groups", {
      RET(at::conv2d(a.t(0), a.t(1), a.ot(2), a.ints(3), a.ints(4), a.ints(5), a.i(6)))
    }),
    OP("batchNorm", "input, weight?, bias?, runningMean?, runningVar?, training, momentum, eps", {
      RET(at::batch_norm(a.t(0), a.ot(1), a.ot(2), a.ot(3), a.ot(4), a.b(5), a.d(6), a.d(7), true))
    }),
    OP("maxPool2d", "input, kernel, stride, padding, dilation, ceilMode", {
      RET(at::max_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.ints(4), a.b(5)))
    }),
    OP("avgPool2d", "input, kernel, stride, padding, ceilMode, countIncludePad", {
      RET(at::avg_pool2d(a.t(0), a.ints(1), a.ints(2), a.ints(3), a.b(4), a.b(5)))
    }),
    OP("adaptiveAvgPool2d", "input, outputSize", { RET(at::adaptive_avg_pool2d(a.t(0), a.ints(1))) }),
    OP("relu", "tensor", { RET(at::relu(a.t(0))) }),
    OP("relu_", "tensor", RET_SELF(a.t(0).relu_())),
    OP("sigmoid", "tensor", { RET(at::sigmoid(a.t(0))) }),
    OP("softmax", "tensor, dim", { RET(at::softmax(a.t(0), a.i(1))) }),
    OP("logSoftmax", "tensor, dim", { RET(at::log_softmax(a.t(0), a.i(1))) }),
    OP("crossEntropy", "logits, target, weight?, reduction?, ignoreIndex?, labelSmoothing?", {
      RET(at::cross_entropy_loss(a.t(0), a.t(1), a.ot(2), reduction(a, 3), a.oi(4).value_or(-100), a.od(5).value_or(0.0)))
    }),
    OP("nllLoss", "logProbs, target, weight?, reduction?, ignoreIndex?", {
      RET(at::nll_loss(a.t(0), a.t(1), a.ot(2), reduction(a, 3), a.oi(4).value_or(-100)))
    }),
    OP("affineGrid", "theta, size, alignCorners", { RET(at::affine_grid_generator(a.t(0), a.ints(1), a.b(2))) }),
    OP("gridSample", "input, grid, mode?, paddingMode?, alignCorners?", {
      T input = a.t(0), grid = a.t(1);
      int64_t mode = interpolation(a, 2), pad = padding(a, 3);
      bool align = a.has(4) ? a.b(4) : false;
      // libtorch 1.13's grid_sampler_2d backward reads out of bounds (a segfault) for NaN or
      // infinite grid values with border/reflection padding; refuse them when autograd records.
      if (c10::GradMode::is_enabled() && (input.requires_grad() || grid.requires_grad()) && grid.is_floating_point()) {
        TORCH_CHECK(at::isfinite(grid.detach()).all().item<bool>(), "the grid has NaN or infinite values, which libtorch cannot differentiate");
      }
      RET(at::grid_sampler(input, grid, mode, pad, align))
    }),
    OP("interpolate", "input, size, mode?, alignCorners?", {
      std::string mode = a.has(2) ? a.s(2) : "bilinear";
      bool align = a.has(3) ? a.b(3) : false;
      if (mode == "bilinear") RET(at::upsample_bilinear2d(a.t(0), a.ints(1), align, c10::nullopt, c10::nullopt))
      if (mode == "bicubic") RET(at::upsample_bicubic2d(a.t(0), a.ints(1), align, c10::nullopt, c10::nullopt))
      if (mode == "nearest") RET(at::upsample_nearest2d(a.t(0), a.ints(1), c10::nullopt, c10::nullopt))
      if (mode == "area") RET(at::adaptive_avg_pool2d(a.t(0), a.ints(1)))
      a.typeError(2, "'bilinear', 'bicubic', 'nearest' or 'area'");
    }),

    // ---- in-place updates (optimisers, initialisers); they return their first argument
    OP("add_", "tensor, other, alpha?", RET_SELF(a.has(2) ? a.t(0).add_(a.t(1), a.d(2)) : a.t(0).add_(a.t(1)))),
    OP("addScalar_", "tensor, value", RET_SELF(a.t(0).add_(scalarFor(a.t(0), a.d(1))))),
    OP("mul_", "tensor, other", RET_SELF(a.t(0).mul_(a.t(1)))),
    OP("mulScalar_", "tensor, value", RET_SELF(a.t(0).mul_(scalarFor(a.t(0), a.d(1))))),
    OP("addcmul_", "tensor, a, b, value", RET_SELF(a.t(0).addcmul_(a.t(1), a.t(2), a.d(3)))),
    OP("addcdiv_", "tensor, a, b, value", RET_SELF(a.t(0).addcdiv_(a.t(1), a.t(2), a.d(3)))),
    OP("copy_", "tensor, source", RET_SELF(a.t(0).copy_(a.t(1)))),
    OP("zero_", "tensor", RET_SELF(a.t(0).zero_())),
    OP("fill_", "tensor, value", RET_SELF(a.t(0).fill_(a.d(1)))),
    OP("clamp_", "tensor, min?, max?", {
      c10::optional<at::Scalar> lo, hi;
      if (a.has(1)) lo = a.d(1);
      if (a.has(2)) hi = a.d(2);
      a.t(0).clamp_(lo, hi);
      return a.self(0);
    }),

    // ---- autograd
    OP("setRequiresGrad", "tensor, requiresGrad", RET_SELF(a.t(0).set_requires_grad(a.b(1)))),
    OP("requiresGrad", "tensor", { return boolean(env, a.t(0).requires_grad()); }),
    OP("isLeaf", "tensor", { return boolean(env, a.t(0).is_leaf()); }),
    OP("grad", "tensor", { RET(a.t(0).grad()) }),
    OP("setGrad", "tensor, grad?", {
      T t = a.t(0);
      if (a.has(1)) {
        T g = a.t(1);
        checkGrad(t, g);
        t.mutable_grad() = g;
      } else {
        t.mutable_grad().reset();
      }
      return env.Undefined();
    }),
    OP("backward", "tensor, gradient?, retainGraph?", {
      T t = a.t(0);
      c10::optional<at::Tensor> g = a.ot(1);
      bool retain = a.has(2) ? a.b(2) : false;
      t.backward(g.has_value() ? *g : T(), retain, false);
      return env.Undefined();
    }),
    OP("setGradEnabled", "enabled", {
      bool previous = c10::GradMode::is_enabled();
      c10::GradMode::set_enabled(a.b(0));
      return boolean(env, previous);
    }),
    OP("isGradEnabled", "", { return boolean(env, c10::GradMode::is_enabled()); }),

    // ---- mixed precision: libtorch's autocast state, driven by scopes on the TS side
    OP("setAutocast", "deviceType, enabled, dtype", {
      c10::DeviceType dev = autocastDevice(a, 0);
      bool on = a.b(1);
      at::ScalarType type = a.dtype(2);
#if SIMCLR_TORCH_AT_LEAST(2, 4)
      // 2.4 keys the autocast state by device type; the per-device calls below became
      // deprecated wrappers that warn on every call (slated for removal).
      at::autocast::set_autocast_enabled(dev, on);
      at::autocast::set_autocast_dtype(dev, type);
#else
      if (dev == c10::DeviceType::CPU) {
        at::autocast::set_cpu_enabled(on);
        at::autocast::set_autocast_cpu_dtype(type);
      } else {
        at::autocast::set_enabled(on);
        at::autocast::set_autocast_gpu_dtype(type);
      }
#endif
      return env.Undefined();
    }),
    OP("autocastState", "deviceType", {
      c10::DeviceType dev = autocastDevice(a, 0);
      auto out = Napi::Object::New(env);
#if SIMCLR_TORCH_AT_LEAST(2, 4)
      out.Set("enabled", at::autocast::is_autocast_enabled(dev));
      out.Set("dtype", dtypeName(at::autocast::get_autocast_dtype(dev)));
#else
      bool cpu = dev == c10::DeviceType::CPU;
      out.Set("enabled", cpu ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled());
      out.Set("dtype", dtypeName(cpu ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype()));
#endif
      return out;
    }),
    OP("autocastNesting", "delta", {
      int64_t delta = a.i(0);
      int depth = delta > 0 ? at::autocast::increment_nesting() : at::autocast::decrement_nesting();
      if (delta < 0 && depth == 0) at::autocast::clear_cache();
      return num(env, depth);
    }),

    // ---- threads and devices
    OP("setNumThreads", "threads", {
      int64_t n = a.i(0);
      if (n < 1 || n > 4096) a.typeError(0, "a thread count between 1 and 4096");
      at::set_num_threads(static_cast<int>(n));
      return env.Undefined();
    }),
    OP("getNumThreads", "", { return num(env, at::get_num_threads()); }),
    // Makes a GPU this thread's current device (as torch.cuda.set_device): kernels and the
    // CUDA context of a worker then stay on its own GPU. A CPU device is left alone.
    OP("setCurrentDevice", "device", {
      at::Device d = a.device(0);
      if (d.is_cuda()) {
        TORCH_CHECK(at::hasCUDA(), "this libtorch has no CUDA");
        c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).setDevice(d.has_index() ? d : at::Device(c10::DeviceType::CUDA, 0));
      }
      return env.Undefined();
    }),
    OP("runtimeInfo", "", {
      auto out = Napi::Object::New(env);
      out.Set("cudaAvailable", at::hasCUDA());
#if SIMCLR_TORCH_AT_LEAST(2, 0)
      // Later 2.x CUDA hooks count devices through deviceCount(); at::getNumGPUs() wraps whichever.
      out.Set("cudaDeviceCount", at::hasCUDA() ? static_cast<double>(at::getNumGPUs()) : 0.0);
#else
      out.Set("cudaDeviceCount", at::hasCUDA() ? static_cast<double>(at::detail::getCUDAHooks().getNumGPUs()) : 0.0);
#endif
      out.Set("mkldnn", at::hasMKLDNN());
      out.Set("openmp", at::hasOpenMP());
      out.Set("parallelInfo", at::get_parallel_info());
      out.Set("threads", at::get_num_threads());
      return out;
    }),
    // Which BLAS libtorch's matrix products reach (the dgemm_ the process resolved) and,
    // for OpenBLAS, the kernel family it picked for this processor.
    OP("blasInfo", "", {
      auto out = Napi::Object::New(env);
      void* gemm = dlsym(RTLD_DEFAULT, "dgemm_");
      Dl_info where{};
      out.Set("library", gemm && dladdr(gemm, &where) && where.dli_fname ? where.dli_fname : "");
      using CoreName = char* (*)();
      auto core = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
      out.Set("openblasCore", core ? core() : "");
      return out;
    }),
};

}  // namespace

const std::vector<OpDef>& opTable() { return kOps; }

}  // namespace simclr
