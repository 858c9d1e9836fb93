// KServe v2 datatypes and the Tensor helpers of the public server API.
#include <array>
#include <limits>

#include "kiln/server.h"

namespace kiln::server {
namespace {

struct TypeRow {
  DataType type;
  std::string_view name;
  size_t size;
};

constexpr std::array kTypes = {
    TypeRow{DataType::kBool, "BOOL", 1},     TypeRow{DataType::kUint8, "UINT8", 1},
    TypeRow{DataType::kUint16, "UINT16", 2}, TypeRow{DataType::kUint32, "UINT32", 4},
    TypeRow{DataType::kUint64, "UINT64", 8}, TypeRow{DataType::kInt8, "INT8", 1},
    TypeRow{DataType::kInt16, "INT16", 2},   TypeRow{DataType::kInt32, "INT32", 4},
    TypeRow{DataType::kInt64, "INT64", 8},   TypeRow{DataType::kFp16, "FP16", 2},
    TypeRow{DataType::kBf16, "BF16", 2},     TypeRow{DataType::kFp32, "FP32", 4},
    TypeRow{DataType::kFp64, "FP64", 8},     TypeRow{DataType::kBytes, "BYTES", 0},
};

}  // namespace

std::string_view datatype_name(DataType type) {
  for (const TypeRow& r : kTypes) {
    if (r.type == type) return r.name;
  }
  return "INVALID";
}

DataType datatype_from_name(std::string_view name) {
  for (const TypeRow& r : kTypes) {
    if (r.name == name) return r.type;
  }
  return DataType::kInvalid;
}

size_t datatype_size(DataType type) {
  for (const TypeRow& r : kTypes) {
    if (r.type == type) return r.size;
  }
  return 0;
}

Tensor Tensor::owned(std::string name, DataType type, std::vector<int64_t> shape,
                     std::vector<uint8_t> bytes) {
  auto holder = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  Tensor t;
  t.name = std::move(name);
  t.datatype = type;
  t.shape = std::move(shape);
  t.data = holder->data();
  t.byte_size = holder->size();
  t.owner = std::move(holder);
  return t;
}

int64_t Tensor::element_count() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;  // overflow
    n *= d;
  }
  return n;
}

}  // namespace kiln::server
