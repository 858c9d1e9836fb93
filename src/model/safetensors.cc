#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/half.h"
#include "core/json.h"

namespace kiln::model {

namespace {

// Larger headers are refused: real ones are a few hundred KB, and the limit bounds the JSON
// parser's memory on hostile input (the reference implementation uses the same 100 MB cap).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

Status bad(const std::string& what) { return data_loss("safetensors: " + what); }

Result<TensorView> parse_entry(const std::string& name, const core::json::Value& v,
                               size_t data_size) {
  if (!v.IsObject()) return bad("entry \"" + name + "\" is not an object");
  TensorView t;
  t.name = name;
  const auto* dtype = core::json::find(v, "dtype");
  if (dtype == nullptr || !dtype->IsString()) return bad("tensor \"" + name + "\" has no dtype");
  if (!parse_dtype(dtype->GetString(), &t.dtype)) {
    return bad("tensor \"" + name + "\" has unsupported dtype " + dtype->GetString());
  }
  const auto* shape = core::json::find(v, "shape");
  if (shape == nullptr || !shape->IsArray()) return bad("tensor \"" + name + "\" has no shape");
  uint64_t numel = 1;
  for (const auto& d : shape->GetArray()) {
    if (!d.IsUint64() || d.GetUint64() > (1ull << 40)) {
      return bad("tensor \"" + name + "\" has an invalid dimension");
    }
    const uint64_t dim = d.GetUint64();
    if (dim != 0 && numel > (1ull << 62) / dim) return bad("tensor \"" + name + "\" is too large");
    numel *= dim;
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  const auto* offsets = core::json::find(v, "data_offsets");
  if (offsets == nullptr || !offsets->IsArray() || offsets->Size() != 2 ||
      !(*offsets)[0].IsUint64() || !(*offsets)[1].IsUint64()) {
    return bad("tensor \"" + name + "\" has invalid data_offsets");
  }
  const uint64_t begin = (*offsets)[0].GetUint64();
  const uint64_t end = (*offsets)[1].GetUint64();
  if (begin > end || end > data_size) {
    return bad("tensor \"" + name + "\" data_offsets [" + std::to_string(begin) + ", " +
               std::to_string(end) + "] lie outside the " + std::to_string(data_size) +
               "-byte data section");
  }
  if (numel > (1ull << 62) / dtype_size(t.dtype) || end - begin != numel * dtype_size(t.dtype)) {
    return bad("tensor \"" + name + "\" has " + std::to_string(end - begin) +
               " bytes but its shape and dtype need " +
               std::to_string(numel * dtype_size(t.dtype)));
  }
  t.nbytes = end - begin;
  t.data = reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(begin));  // rebased later
  return t;
}

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::describe() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "] " + std::string(dtype_name(dtype));
}

Result<SafeTensors> SafeTensors::open(const std::string& path) {
  KILN_ASSIGN_OR_RETURN(auto file, core::MappedFile::open(path));
  auto parsed = parse(file.data(), file.size());
  if (!parsed.ok()) return parsed.status().with_context(path);
  SafeTensors st = std::move(parsed).value();
  st.file_ = std::move(file);  // the views point into the mapping, which does not move
  return st;
}

Result<SafeTensors> SafeTensors::parse(const uint8_t* data, size_t size) {
  if (size < 8) return bad("file of " + std::to_string(size) + " bytes has no header");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  if (header_len > kMaxHeaderBytes || header_len > size - 8) {
    return bad("header length " + std::to_string(header_len) + " exceeds the file size " +
               std::to_string(size));
  }
  const std::string_view header(reinterpret_cast<const char*>(data + 8), header_len);
  core::json::Document doc;
  KILN_RETURN_IF_ERROR(
      core::json::parse(header, "safetensors header", &doc).with_context("safetensors"));
  if (!doc.IsObject()) return bad("header is not a JSON object");
  const uint8_t* base = data + 8 + header_len;
  const size_t data_size = size - 8 - header_len;

  SafeTensors st;
  std::set<std::string> names;
  for (const auto& m : doc.GetObject()) {
    const std::string name(m.name.GetString(), m.name.GetStringLength());
    if (!names.insert(name).second) return bad("duplicate entry \"" + name + "\"");
    if (name == "__metadata__") {
      if (!m.value.IsObject()) return bad("__metadata__ is not an object");
      for (const auto& kv : m.value.GetObject()) {
        if (!kv.value.IsString()) return bad("__metadata__ values must be strings");
        st.metadata_[kv.name.GetString()] = kv.value.GetString();
      }
      continue;
    }
    KILN_ASSIGN_OR_RETURN(auto t, parse_entry(name, m.value, data_size));
    t.data = base + reinterpret_cast<uintptr_t>(t.data);
    st.tensors_.push_back(std::move(t));
  }
  // Ties on the start put empty tensors first, so they never look like an overlap.
  std::sort(st.tensors_.begin(), st.tensors_.end(), [](const TensorView& a, const TensorView& b) {
    return a.data != b.data ? a.data < b.data : a.nbytes < b.nbytes;
  });
  for (size_t i = 1; i < st.tensors_.size(); ++i) {
    const auto& prev = st.tensors_[i - 1];
    if (prev.data + prev.nbytes > st.tensors_[i].data) {
      return bad("tensors \"" + prev.name + "\" and \"" + st.tensors_[i].name + "\" overlap");
    }
  }
  return st;
}

const TensorView* SafeTensors::find(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Result<std::vector<float>> to_float32(const TensorView& t) {
  const int64_t n = t.numel();
  std::vector<float> out(static_cast<size_t>(n));
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(out.data(), t.data, t.nbytes);
      break;
    case DType::kF16:
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        out[i] = t.dtype == DType::kF16 ? core::fp16_to_float(h) : core::bf16_to_float(h);
      }
      break;
    default:
      return invalid_argument("tensor \"" + t.name + "\" has dtype " +
                              std::string(dtype_name(t.dtype)) +
                              "; weights must be F32, F16 or BF16");
  }
  return out;
}

}  // namespace kiln::model
