// The binary sections: tokenizer, quantization and sparsity.
#include <cmath>
#include <cstring>

#include "plan/byte_io.h"
#include "plan/plan_format.h"
#include "plan/sections.h"

namespace kiln::plan {

std::string_view site_name(quant::LinearSite site) {
  switch (site) {
    case quant::LinearSite::kQkv:
      return "qkv";
    case quant::LinearSite::kAttnOut:
      return "attn_out";
    case quant::LinearSite::kFfnIn:
      return "ffn_in";
    case quant::LinearSite::kFfnOut:
      return "ffn_out";
  }
  return "?";
}

std::string encode_tokenizer(TokenizerRecord::Kind kind, bool lowercase, std::string_view text) {
  ByteWriter w;
  w.put(static_cast<uint32_t>(kind));
  w.put(static_cast<uint32_t>(lowercase ? 1 : 0));
  w.put_bytes(text.data(), text.size());
  return w.take();
}

Result<TokenizerRecord> decode_tokenizer(std::string_view bytes) {
  ByteReader r(bytes, std::string(kSectionTokenizer));
  uint32_t kind = 0, lowercase = 0;
  KILN_RETURN_IF_ERROR(r.get(&kind));
  KILN_RETURN_IF_ERROR(r.get(&lowercase));
  if (kind != 1 && kind != 2) return r.corrupt("unknown tokenizer kind " + std::to_string(kind));
  if (lowercase > 1) return r.corrupt("lowercase flag " + std::to_string(lowercase));
  TokenizerRecord t;
  t.kind = static_cast<TokenizerRecord::Kind>(kind);
  t.lowercase = lowercase == 1;
  KILN_RETURN_IF_ERROR(r.get_bytes(r.remaining(), &t.text));
  return t;
}

namespace {

constexpr uint32_t kMaxSmooth = 1 << 20;

Result<Precision> precision_from(uint8_t code, const ByteReader& r) {
  if (code > static_cast<uint8_t>(Precision::kFp8)) {
    return r.corrupt("unknown precision " + std::to_string(code));
  }
  return static_cast<Precision>(code);
}

// Width of the input of `site` (SmoothQuant vectors have one factor per input channel).
int64_t input_width(int site, int64_t hidden, int64_t intermediate) {
  return site == static_cast<int>(quant::LinearSite::kFfnOut) ? intermediate : hidden;
}

}  // namespace

std::string encode_quant(const QuantRecord& rec) {
  ByteWriter w;
  w.put(static_cast<uint8_t>(rec.precision));
  w.put(uint8_t{0});
  w.put(uint16_t{0});
  w.put(rec.quant.gelu_clip);
  w.put(static_cast<uint32_t>(rec.quant.layers.size()));
  for (const auto& layer : rec.quant.layers) {
    for (const quant::LinearQuant& q : layer.sites) {
      w.put(static_cast<uint8_t>(q.precision));
      w.put(static_cast<uint8_t>(q.scaling));
      w.put(uint16_t{0});
      w.put(q.input_scale);
      w.put(static_cast<uint32_t>(q.smooth.size()));
      w.put_bytes(q.smooth.data(), q.smooth.size() * sizeof(float));
    }
  }
  return w.take();
}

Result<QuantRecord> decode_quant(std::string_view bytes, int64_t num_layers, int64_t hidden,
                                 int64_t intermediate) {
  ByteReader r(bytes, std::string(kSectionQuant));
  QuantRecord rec;
  uint8_t precision = 0, pad8 = 0;
  uint16_t pad16 = 0;
  uint32_t layers = 0;
  KILN_RETURN_IF_ERROR(r.get(&precision));
  KILN_RETURN_IF_ERROR(r.get(&pad8));
  KILN_RETURN_IF_ERROR(r.get(&pad16));
  KILN_ASSIGN_OR_RETURN(rec.precision, precision_from(precision, r));
  KILN_RETURN_IF_ERROR(r.get(&rec.quant.gelu_clip));
  if (!std::isfinite(rec.quant.gelu_clip) || rec.quant.gelu_clip < 0) {
    return r.corrupt("GELU clip " + std::to_string(rec.quant.gelu_clip));
  }
  KILN_RETURN_IF_ERROR(r.get(&layers));
  if (static_cast<int64_t>(layers) != num_layers) {
    return r.corrupt(std::to_string(layers) + " layers; the model has " +
                     std::to_string(num_layers));
  }
  // Each site takes at least 12 bytes: a corrupt count cannot make a huge allocation.
  if (layers > r.remaining() / (size_t{12} * quant::kLinearSites))
    return r.corrupt("layers truncated");
  rec.quant.layers.resize(layers);
  for (uint32_t l = 0; l < layers; ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) {
      quant::LinearQuant& q = rec.quant.layers[l].sites[s];
      const std::string what = "layer " + std::to_string(l) + " " +
                               std::string(site_name(static_cast<quant::LinearSite>(s)));
      uint8_t p = 0, scaling = 0;
      uint32_t smooth = 0;
      KILN_RETURN_IF_ERROR(r.get(&p));
      KILN_RETURN_IF_ERROR(r.get(&scaling));
      KILN_RETURN_IF_ERROR(r.get(&pad16));
      KILN_RETURN_IF_ERROR(r.get(&q.input_scale));
      KILN_RETURN_IF_ERROR(r.get(&smooth));
      KILN_ASSIGN_OR_RETURN(q.precision, precision_from(p, r));
      if (scaling > static_cast<uint8_t>(quant::ActivationScaling::kStaticPerTensor)) {
        return r.corrupt(what + ": unknown activation scaling " + std::to_string(scaling));
      }
      q.scaling = static_cast<quant::ActivationScaling>(scaling);
      if (!std::isfinite(q.input_scale) || q.input_scale < 0) {
        return r.corrupt(what + ": input scale " + std::to_string(q.input_scale));
      }
      if (smooth != 0 && (smooth > kMaxSmooth || smooth != input_width(s, hidden, intermediate))) {
        return r.corrupt(what + ": SmoothQuant vector of " + std::to_string(smooth) +
                         " for an input of " +
                         std::to_string(input_width(s, hidden, intermediate)));
      }
      std::string_view raw;
      KILN_RETURN_IF_ERROR(r.get_bytes(smooth * sizeof(float), &raw));
      q.smooth.resize(smooth);
      std::memcpy(q.smooth.data(), raw.data(), raw.size());
      for (float f : q.smooth) {
        if (!std::isfinite(f) || f <= 0) return r.corrupt(what + ": SmoothQuant factor <= 0");
      }
    }
  }
  if (r.remaining() != 0) return r.corrupt(std::to_string(r.remaining()) + " trailing bytes");
  return rec;
}

std::string encode_sparsity(const SparsityRecord& record) {
  ByteWriter w;
  w.put(static_cast<uint32_t>(record.size()));
  for (const auto& layer : record) {
    for (Sparsity s : layer) w.put(static_cast<uint8_t>(s));
  }
  return w.take();
}

Result<SparsityRecord> decode_sparsity(std::string_view bytes, int64_t num_layers) {
  ByteReader r(bytes, std::string(kSectionSparsity));
  uint32_t layers = 0;
  KILN_RETURN_IF_ERROR(r.get(&layers));
  if (static_cast<int64_t>(layers) != num_layers) {
    return r.corrupt(std::to_string(layers) + " layers; the model has " +
                     std::to_string(num_layers));
  }
  if (layers > r.remaining() / quant::kLinearSites) return r.corrupt("layers truncated");
  SparsityRecord out(layers);
  for (auto& layer : out) {
    for (Sparsity& s : layer) {
      uint8_t v = 0;
      KILN_RETURN_IF_ERROR(r.get(&v));
      if (v > static_cast<uint8_t>(Sparsity::kTwoFour)) {
        return r.corrupt("unknown pattern " + std::to_string(v));
      }
      s = static_cast<Sparsity>(v);
    }
  }
  if (r.remaining() != 0) return r.corrupt(std::to_string(r.remaining()) + " trailing bytes");
  return out;
}

}  // namespace kiln::plan
