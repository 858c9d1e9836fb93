// The plan file: kiln's serialized optimized model, written by `kiln build` and loaded by
// Engine::load. One file, little-endian, mapped read-only and used in place:
//
//   [0, 256)        header (fixed layout below; not covered by the body checksum)
//   [256, 256+64n)  section table: n entries of {char name[32]; u64 offset; u64 size;
//                   u64 reserved[2]}, names NUL-padded and unique
//   sections        each at a 64-byte aligned offset, in any order, never overlapping
//
// Header: magic "KILNPLAN" | u32 format_version | u32 header_size (256) | u64 flags |
//   u64 file_size | u64 body_checksum | u64 header_checksum | u32 num_sections | u32 0 |
//   char backend[16] | char features[64] (comma separated, e.g. "avx512,avx512_bf16") |
//   char packing_library[32] ("onednn 2.6.3" when weights are pre-packed) |
//   char precision[32] ("fp32", "bf16", "int8", "int8+bf16") | char producer[32] | zeros.
//   Strings are NUL-padded. header_checksum is XXH3-64 of the 256 header bytes with that field
//   zeroed; body_checksum is XXH3-64 over the little-endian XXH3-64 hashes of consecutive
//   8 MiB chunks of [256, file_size): chunks verify in parallel, so a 440 MB plan checks in
//   tens of milliseconds.
//
// Sections (see sections.h, tensor_table.h):
//   "model"      JSON: the Hugging Face config.json text plus ModelInfo essentials (task,
//                labels, pooling, head activation, parameter count)
//   "tokenizer"  u32 kind (1 tokenizer.json, 2 vocab.txt) | u32 lowercase | text (optional)
//   "quant"      quant::ModelQuant: per layer and site precision, scaling, input scale,
//                SmoothQuant vector; the GELU clip
//   "sparsity"   per layer and site one byte: 0 dense, 1 pruned 2:4
//   "tensors"    the tensor directory: name, dtype (F32/BF16/F16/I8), layout (row-major or the
//                backend's packed layout with its fingerprint), shape, data offset and size,
//                optional per-output-channel scales
//   "weights"    the tensor bytes, each tensor 64-byte aligned
//   "device"     optional: what the backend decided for the build machine besides the weights
//                (CUDA: GEMM algorithms timed per shape, the GELU form), JSON whose
//                "summary" strings `kiln inspect` prints; opaque to the plan layer
//
// Compatibility: a reader refuses a newer format_version, another backend, features this
// machine lacks, and packed weights whose layout its kernels would not choose. Corruption
// (bad magic, checksums, truncation, offsets out of bounds) is DataLoss naming the problem.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::plan {

inline constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'P', 'L', 'A', 'N'};
/// The newest format this kiln reads and the one it writes. 2 added F16 tensors and FP16
/// layers (CUDA plans), 3 FP8 layers (precision code 4: an older kiln says the plan is newer
/// rather than corrupt); older plans read unchanged.
inline constexpr uint32_t kFormatVersion = 3;
inline constexpr uint64_t kHeaderSize = 256;
inline constexpr uint64_t kSectionEntrySize = 64;
inline constexpr uint64_t kSectionNameSize = 32;
/// Alignment of sections and of every tensor (a cache line; AVX-512 loads).
inline constexpr uint64_t kAlignment = 64;
/// The body checksum hashes chunks of this size independently (see above).
inline constexpr uint64_t kChecksumChunk = uint64_t{8} << 20;
/// Upper bound on sections and tensors a reader accepts (a corrupt count is not an allocation).
inline constexpr uint32_t kMaxSections = 64;

/// Header flag: linear weights are stored in the backend's packed layout.
inline constexpr uint64_t kFlagPackedWeights = 1;

/// The file name a server's version folder holds a plan under (as TensorRT's).
inline constexpr const char* kDefaultFileName = "model.plan";

/// Section names.
inline constexpr std::string_view kSectionModel = "model";
inline constexpr std::string_view kSectionTokenizer = "tokenizer";
inline constexpr std::string_view kSectionQuant = "quant";
inline constexpr std::string_view kSectionSparsity = "sparsity";
inline constexpr std::string_view kSectionTensors = "tensors";
inline constexpr std::string_view kSectionWeights = "weights";
inline constexpr std::string_view kSectionDevice = "device";

/// The decoded header.
struct Header {
  uint32_t format_version = kFormatVersion;
  uint64_t flags = 0;
  uint64_t file_size = 0;
  uint64_t body_checksum = 0;
  uint32_t num_sections = 0;
  std::string backend;                ///< device name, e.g. "cpu"
  std::vector<std::string> features;  ///< machine features the plan depends on
  std::string packing_library;        ///< library of packed layouts, "" when none
  std::string precision;              ///< summary of the layer precisions
  std::string producer;               ///< "kiln 0.1.0"
};

/// One entry of the section table.
struct Section {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
};

/// Byte offsets of the header fields.
namespace header_offset {
inline constexpr size_t kVersion = 8;
inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kFlags = 16;
inline constexpr size_t kFileSize = 24;
inline constexpr size_t kBodyChecksum = 32;
inline constexpr size_t kHeaderChecksum = 40;
inline constexpr size_t kNumSections = 48;
inline constexpr size_t kBackend = 56;          // 16 bytes
inline constexpr size_t kFeatures = 72;         // 64
inline constexpr size_t kPackingLibrary = 136;  // 32
inline constexpr size_t kPrecision = 168;       // 32
inline constexpr size_t kProducer = 200;        // 32
}  // namespace header_offset

/// Rounds `n` up to the alignment.
inline constexpr uint64_t align_up(uint64_t n) { return (n + kAlignment - 1) & ~(kAlignment - 1); }

/// "a,b,c" <-> {"a", "b", "c"}.
std::string join_features(const std::vector<std::string>& features);
std::vector<std::string> split_features(std::string_view text);

}  // namespace kiln::plan
