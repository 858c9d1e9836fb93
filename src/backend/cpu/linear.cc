#include "backend/cpu/linear.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdio>
#include <unordered_map>
#include <vector>

#include "backend/cpu/layer_norm.h"
#include "backend/cpu/linear_int8.h"
#include "backend/cpu/onednn_util.h"

namespace kiln::backend::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

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

Status Linear::prepare(const float* bias) {
  const LinearSpec& spec = spec_;
  Impl& im = *impl_;
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
    im.bias = memory({{1, spec.out}, dt::f32, tag::ab}, cpu_engine());
    auto* b = static_cast<float*>(im.bias.get_data_handle());
    for (int64_t i = 0; i < spec.out; ++i) b[i] = bias != nullptr ? bias[i] : 0.0f;
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: cannot build linear layer: ") + e.what());
  }
  return ok_status();
}

Result<std::unique_ptr<Linear>> Linear::create(const float* weight, const float* bias,
                                               const LinearSpec& spec) {
  if (spec.out <= 0 || spec.in <= 0) return invalid_argument("linear: empty weight");
  std::unique_ptr<Linear> lin(new Linear(spec));
  if (spec.precision == Precision::kInt8) {
    KILN_ASSIGN_OR_RETURN(lin->int8_, Int8Linear::create(weight, bias, spec));
    return lin;
  }
  KILN_RETURN_IF_ERROR(lin->prepare(bias));
  Impl& im = *lin->impl_;
  try {
    // PyTorch's [out, in] row-major is the [in, out] matrix in "ba" order.
    std::vector<uint16_t> w16;
    memory plain;
    if (spec.precision == Precision::kBF16) {
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
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: cannot build linear layer: ") + e.what());
  }
  return lin;
}

Result<std::unique_ptr<Linear>> Linear::from_packed(const void* packed, size_t bytes,
                                                    std::string_view layout, const float* bias,
                                                    const LinearSpec& spec) {
  if (spec.out <= 0 || spec.in <= 0) return invalid_argument("linear: empty weight");
  std::unique_ptr<Linear> lin(new Linear(spec));
  if (spec.precision == Precision::kInt8) {
    KILN_ASSIGN_OR_RETURN(lin->int8_, Int8Linear::adopt(packed, bytes, bias, spec));
    if (layout != lin->layout()) {
      return failed_precondition("packed weights are in layout \"" + std::string(layout) +
                                 "\" but this machine's kernel wants \"" + lin->layout() + "\"");
    }
    return lin;
  }
  KILN_RETURN_IF_ERROR(lin->prepare(bias));
  Impl& im = *lin->impl_;
  const std::string here = lin->layout();
  if (layout != here || bytes != im.weight_md.get_size()) {
    return failed_precondition("packed weights are in layout \"" + std::string(layout) +
                               "\" but this machine's kernel wants \"" + here + "\"");
  }
  try {
    // oneDNN only reads weights: the read-only mapping is used in place.
    im.weights = memory(im.weight_md, cpu_engine(), const_cast<void*>(packed));
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: cannot adopt packed weights: ") + e.what());
  }
  return lin;
}

Status Linear::run(const void* x, int64_t rows, void* y) const {
  if (rows == 0) return ok_status();
  if (int8_ != nullptr) return int8_->run(x, rows, y);
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

Status Linear::run_quantized_output(const void* x, int64_t rows, const Linear& next,
                                    QuantizedRows out) const {
  if (int8_ == nullptr || next.int8_ == nullptr) {
    return invalid_argument("linear: quantized hand-over needs two int8 layers");
  }
  return int8_->run_quantized_output(x, rows, *next.int8_, out);
}

Status Linear::run_quantized_input(QuantizedRows x, int64_t rows, void* y) const {
  if (int8_ == nullptr) return invalid_argument("linear: quantized input needs an int8 layer");
  return int8_->run_quantized_input(x, rows, y);
}

size_t Linear::weight_bytes() const {
  return int8_ != nullptr ? int8_->weight_bytes() : impl_->weight_md.get_size();
}

std::string Linear::kernel_name() const {
  return int8_ != nullptr ? int8_->kernel_name() : impl_->kernel;
}

const void* Linear::packed_weights() const {
  return int8_ != nullptr ? int8_->packed_weights() : impl_->weights.get_data_handle();
}

std::string Linear::packing_library() {
  const dnnl_version_t* v = dnnl_version();
  return "onednn " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch);
}

std::string Linear::layout() const {
  // oneDNN 2.x exposes the descriptor as a plain struct; its blocking fields (not its padding
  // bytes) decide where every weight lives.
  const dnnl_memory_desc_t& md = (int8_ != nullptr ? int8_->weight_md() : impl_->weight_md).data;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  auto mix = [&h](int64_t v) {
    for (int i = 0; i < 8; ++i)
      h = (h ^ ((static_cast<uint64_t>(v) >> (8 * i)) & 0xff)) * 1099511628211ull;
  };
  mix(md.ndims);
  mix(md.data_type);
  mix(md.format_kind);
  mix(md.offset0);
  mix(md.extra.flags);
  mix(md.extra.compensation_mask);
  const auto& blk = md.format_desc.blocking;
  for (int i = 0; i < md.ndims; ++i) {
    mix(md.dims[i]);
    mix(md.padded_dims[i]);
    mix(blk.strides[i]);
  }
  mix(blk.inner_nblks);
  for (int i = 0; i < blk.inner_nblks; ++i) {
    mix(blk.inner_blks[i]);
    mix(blk.inner_idxs[i]);
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return packing_library() + " " + kernel_name() + " " + std::to_string(spec_.in) + "x" +
         std::to_string(spec_.out) + " " + hex;
}

}  // namespace kiln::backend::cpu
