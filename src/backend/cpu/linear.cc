#include "backend/cpu/linear.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <vector>

#include "backend/cpu/layer_norm.h"

namespace kiln::backend::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::algorithm to_algorithm(Epilogue e) {
  switch (e) {
    case Epilogue::kGeluErf:
      return dnnl::algorithm::eltwise_gelu_erf;
    case Epilogue::kGeluTanh:
      return dnnl::algorithm::eltwise_gelu_tanh;
    case Epilogue::kTanh:
      return dnnl::algorithm::eltwise_tanh;
    case Epilogue::kRelu:
      return dnnl::algorithm::eltwise_relu;
    case Epilogue::kNone:
      break;
  }
  return dnnl::algorithm::undef;
}

// Primitives are cached per row count; ragged batches produce many distinct counts, so the
// cache is bounded (cleared when full; creating a matmul primitive costs tens of microseconds).
constexpr size_t kMaxCachedShapes = 512;

}  // namespace

struct Linear::Impl {
  dt act_type = dt::f32;
  dt out_type = dt::f32;
  memory::desc weight_md;
  memory weights;
  memory bias;
  dnnl::primitive_attr attr;
  mutable std::mutex mu;
  struct Entry {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
  };
  mutable std::unordered_map<int64_t, std::shared_ptr<const Entry>> cache;
  std::string kernel;

  dnnl::matmul::primitive_desc make_pd(int64_t rows, const memory::desc& wmd,
                                       const LinearSpec& s) const {
    const memory::desc src({rows, s.in}, act_type, tag::ab);
    const memory::desc dst({rows, s.out}, out_type, tag::ab);
    const memory::desc bias_md({1, s.out}, dt::f32, tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, bias_md, dst), attr,
                                        cpu_engine());
  }
};

Linear::Linear(const LinearSpec& spec) : spec_(spec), impl_(std::make_unique<Impl>()) {}
Linear::~Linear() = default;

Result<std::unique_ptr<Linear>> Linear::create(const float* weight, const float* bias,
                                               const LinearSpec& spec) {
  if (spec.out <= 0 || spec.in <= 0) return invalid_argument("linear: empty weight");
  std::unique_ptr<Linear> lin(new Linear(spec));
  Impl& im = *lin->impl_;
  const bool bf16 = spec.precision == Precision::kBF16;
  im.act_type = bf16 ? dt::bf16 : dt::f32;
  im.out_type = spec.bf16_output ? dt::bf16 : dt::f32;

  dnnl::post_ops ops;
  if (spec.epilogue != Epilogue::kNone) {
    ops.append_eltwise(1.0f, to_algorithm(spec.epilogue), 0.0f, 0.0f);
  }
  if (spec.accumulate) ops.append_sum(1.0f);
  im.attr.set_post_ops(ops);
  // Scratchpads are passed per call so that concurrent run() calls never share one.
  im.attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

  try {
    // The packed layout is the same for every row count (checked for the shapes BERT models
    // use), so the weights are reordered once with the layout chosen for a single row.
    const memory::desc any_md({spec.in, spec.out}, im.act_type, tag::any);
    const auto pd = im.make_pd(1, any_md, spec);
    im.weight_md = pd.weights_desc();
    im.kernel = pd.impl_info_str();

    // PyTorch's [out, in] row-major is the [in, out] matrix in "ba" order.
    std::vector<uint16_t> w16;
    memory plain;
    if (bf16) {
      w16.resize(static_cast<size_t>(spec.out * spec.in));
      convert_to_bf16(weight, spec.out * spec.in, w16.data());
      plain = memory({{spec.in, spec.out}, dt::bf16, tag::ba}, cpu_engine(), w16.data());
    } else {
      plain =
          memory({{spec.in, spec.out}, dt::f32, tag::ba}, cpu_engine(), const_cast<float*>(weight));
    }
    im.weights = memory(im.weight_md, cpu_engine());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, im.weights).execute(stream, plain, im.weights);
    stream.wait();

    im.bias = memory({{1, spec.out}, dt::f32, tag::ab}, cpu_engine());
    auto* b = static_cast<float*>(im.bias.get_data_handle());
    for (int64_t i = 0; i < spec.out; ++i) b[i] = bias != nullptr ? bias[i] : 0.0f;
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: cannot build linear layer: ") + e.what());
  }
  return lin;
}

Status Linear::run(const void* x, int64_t rows, void* y) const {
  if (rows == 0) return ok_status();
  Impl& im = *impl_;
  try {
    std::shared_ptr<const Impl::Entry> entry;
    {
      std::lock_guard<std::mutex> lock(im.mu);
      auto it = im.cache.find(rows);
      if (it != im.cache.end()) {
        entry = it->second;
      } else {
        if (im.cache.size() >= kMaxCachedShapes) im.cache.clear();
        auto pd = im.make_pd(rows, im.weight_md, spec_);
        entry = std::make_shared<const Impl::Entry>(Impl::Entry{pd, dnnl::matmul(pd)});
        im.cache.emplace(rows, entry);
      }
    }
    // Executing one primitive from several threads is safe with user-managed scratchpads.
    const auto* pd = &entry->pd;
    const dnnl::matmul& mm = entry->prim;
    thread_local std::vector<uint8_t> scratch;
    const size_t scratch_bytes = pd->scratchpad_desc().get_size();
    if (scratch.size() < scratch_bytes) scratch.resize(scratch_bytes);
    dnnl::stream stream(cpu_engine());
    memory src(pd->src_desc(), cpu_engine(), const_cast<void*>(x));
    memory dst(pd->dst_desc(), cpu_engine(), y);
    memory pad(pd->scratchpad_desc(), cpu_engine(), scratch.data());
    mm.execute(stream, {{DNNL_ARG_SRC, src},
                        {DNNL_ARG_WEIGHTS, im.weights},
                        {DNNL_ARG_BIAS, im.bias},
                        {DNNL_ARG_DST, dst},
                        {DNNL_ARG_SCRATCHPAD, pad}});
    stream.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN matmul failed: ") + e.what());
  }
  return ok_status();
}

size_t Linear::weight_bytes() const { return impl_->weight_md.get_size(); }

std::string Linear::kernel_name() const { return impl_->kernel; }

}  // namespace kiln::backend::cpu
