#include "plan/tensor_table.h"

#include <set>

#include "plan/byte_io.h"
#include "plan/plan_format.h"

namespace kiln::plan {

namespace {

constexpr uint32_t kMaxTensors = 1 << 16;
constexpr uint8_t kMaxRank = 4;
constexpr int64_t kMaxDim = int64_t{1} << 32;

// Checks that [offset, offset + size) lies inside a section of `limit` bytes, 64-byte aligned.
Status check_range(const ByteReader& r, const std::string& what, uint64_t offset, uint64_t size,
                   uint64_t limit) {
  if (offset % kAlignment != 0) {
    return r.corrupt(what + " offset " + std::to_string(offset) + " is not 64-byte aligned");
  }
  if (offset > limit || size > limit - offset) {
    return r.corrupt(what + " [" + std::to_string(offset) + ", +" + std::to_string(size) +
                     ") is outside the weights section of " + std::to_string(limit) + " bytes");
  }
  return ok_status();
}

}  // namespace

std::string_view tensor_type_name(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return "F32";
    case TensorType::kBF16:
      return "BF16";
    case TensorType::kI8:
      return "I8";
    case TensorType::kF16:
      return "F16";
  }
  return "?";
}

size_t tensor_type_size(TensorType type) {
  switch (type) {
    case TensorType::kF32:
      return 4;
    case TensorType::kBF16:
    case TensorType::kF16:
      return 2;
    case TensorType::kI8:
      return 1;
  }
  return 1;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string encode_tensor_table(const std::vector<TensorEntry>& entries) {
  ByteWriter w;
  w.put(static_cast<uint32_t>(entries.size()));
  for (const TensorEntry& e : entries) {
    w.put_string(e.name);
    w.put(static_cast<uint8_t>(e.type));
    w.put(static_cast<uint8_t>(e.layout));
    w.put(static_cast<uint8_t>(e.shape.size()));
    w.put(uint8_t{0});
    for (int64_t d : e.shape) w.put(d);
    w.put_string(e.packing);
    w.put(e.offset);
    w.put(e.nbytes);
    w.put(e.scales_offset);
    w.put(e.num_scales);
  }
  return w.take();
}

Result<std::vector<TensorInfo>> decode_tensor_table(std::string_view table,
                                                    std::string_view weights) {
  ByteReader r(table, std::string(kSectionTensors));
  uint32_t count = 0;
  KILN_RETURN_IF_ERROR(r.get(&count));
  if (count > kMaxTensors) return r.corrupt(std::to_string(count) + " tensors");
  std::vector<TensorInfo> out;
  std::set<std::string_view> names;
  const auto* base = reinterpret_cast<const uint8_t*>(weights.data());
  for (uint32_t i = 0; i < count; ++i) {
    TensorInfo t;
    std::string_view name, packing;
    uint8_t type = 0, layout = 0, rank = 0, reserved = 0;
    KILN_RETURN_IF_ERROR(r.get_string(&name, 256));
    KILN_RETURN_IF_ERROR(r.get(&type));
    KILN_RETURN_IF_ERROR(r.get(&layout));
    KILN_RETURN_IF_ERROR(r.get(&rank));
    KILN_RETURN_IF_ERROR(r.get(&reserved));
    const std::string what = "tensor '" + std::string(name) + "'";
    if (name.empty() || !names.insert(name).second) {
      return r.corrupt("tensor name '" + std::string(name) + "' is empty or repeated");
    }
    if (type > static_cast<uint8_t>(TensorType::kF16)) {
      return r.corrupt(what + " has unknown dtype " + std::to_string(type));
    }
    if (layout > static_cast<uint8_t>(TensorLayout::kPacked)) {
      return r.corrupt(what + " has unknown layout " + std::to_string(layout));
    }
    if (rank == 0 || rank > kMaxRank) return r.corrupt(what + " has rank " + std::to_string(rank));
    uint64_t numel = 1;
    for (uint8_t d = 0; d < rank; ++d) {
      int64_t dim = 0;
      KILN_RETURN_IF_ERROR(r.get(&dim));
      if (dim <= 0 || dim > kMaxDim) {
        return r.corrupt(what + " has dimension " + std::to_string(dim));
      }
      if (numel > (uint64_t{1} << 48) / static_cast<uint64_t>(dim)) {
        return r.corrupt(what + " has too many elements");
      }
      numel *= static_cast<uint64_t>(dim);
      t.shape.push_back(dim);
    }
    KILN_RETURN_IF_ERROR(r.get_string(&packing, 1024));
    uint64_t offset = 0, nbytes = 0, scales_offset = 0, num_scales = 0;
    KILN_RETURN_IF_ERROR(r.get(&offset));
    KILN_RETURN_IF_ERROR(r.get(&nbytes));
    KILN_RETURN_IF_ERROR(r.get(&scales_offset));
    KILN_RETURN_IF_ERROR(r.get(&num_scales));
    t.name = std::string(name);
    t.type = static_cast<TensorType>(type);
    t.layout = static_cast<TensorLayout>(layout);
    t.packing = std::string(packing);
    if (t.layout == TensorLayout::kRowMajor && nbytes != numel * tensor_type_size(t.type)) {
      return r.corrupt(what + " holds " + std::to_string(nbytes) + " bytes; its shape needs " +
                       std::to_string(numel * tensor_type_size(t.type)));
    }
    if (t.layout == TensorLayout::kPacked && (nbytes == 0 || t.packing.empty())) {
      return r.corrupt(what + " is packed without bytes or a layout name");
    }
    KILN_RETURN_IF_ERROR(check_range(r, what, offset, nbytes, weights.size()));
    t.data = base + offset;
    t.nbytes = nbytes;
    if (num_scales != 0) {
      if (num_scales != static_cast<uint64_t>(t.shape[0])) {
        return r.corrupt(what + " has " + std::to_string(num_scales) + " scales for " +
                         std::to_string(t.shape[0]) + " output channels");
      }
      KILN_RETURN_IF_ERROR(
          check_range(r, what + " scales", scales_offset, num_scales * 4, weights.size()));
      t.scales = reinterpret_cast<const float*>(base + scales_offset);
      t.num_scales = num_scales;
    }
    out.push_back(std::move(t));
  }
  if (r.remaining() != 0) return r.corrupt(std::to_string(r.remaining()) + " trailing bytes");
  return out;
}

}  // namespace kiln::plan
