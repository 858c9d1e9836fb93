#include "plan/plan_file.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "plan/checksum.h"

namespace kiln::plan {

namespace {

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// A NUL-padded fixed-size string field.
std::string fixed_string(const uint8_t* p, size_t n) {
  size_t len = 0;
  while (len < n && p[len] != 0) ++len;
  return std::string(reinterpret_cast<const char*>(p), len);
}

uint64_t header_checksum(const uint8_t* data) {
  uint8_t copy[kHeaderSize];
  std::memcpy(copy, data, kHeaderSize);
  std::memset(copy + header_offset::kHeaderChecksum, 0, 8);
  return hash64(copy, kHeaderSize);
}

}  // namespace

std::string join_features(const std::vector<std::string>& features) {
  std::string out;
  for (const auto& f : features) {
    if (!out.empty()) out += ',';
    out += f;
  }
  return out;
}

std::vector<std::string> split_features(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

Result<Header> decode_header(const uint8_t* data, size_t size) {
  if (size < sizeof(kMagic) || std::memcmp(data, kMagic, sizeof(kMagic)) != 0) {
    return data_loss("not a kiln plan: bad magic (expected \"KILNPLAN\")");
  }
  if (size < header_offset::kVersion + 4) return data_loss("plan truncated inside its header");
  Header h;
  namespace off = header_offset;
  h.format_version = load<uint32_t>(data + off::kVersion);
  if (h.format_version > kFormatVersion) {
    return failed_precondition("plan format version " + std::to_string(h.format_version) +
                               " is newer than this kiln (" + std::to_string(kFormatVersion) +
                               "); rebuild the plan with this kiln or upgrade kiln");
  }
  if (h.format_version == 0) return data_loss("plan header is corrupt: format version 0");
  if (size < kHeaderSize) {
    return data_loss("plan truncated: " + std::to_string(size) + " bytes, the header alone is " +
                     std::to_string(kHeaderSize));
  }
  if (load<uint32_t>(data + off::kHeaderSize) != kHeaderSize) {
    return data_loss("plan header is corrupt: header size " +
                     std::to_string(load<uint32_t>(data + off::kHeaderSize)));
  }
  h.flags = load<uint64_t>(data + off::kFlags);
  h.file_size = load<uint64_t>(data + off::kFileSize);
  h.body_checksum = load<uint64_t>(data + off::kBodyChecksum);
  h.num_sections = load<uint32_t>(data + off::kNumSections);
  h.backend = fixed_string(data + off::kBackend, 16);
  h.features = split_features(fixed_string(data + off::kFeatures, 64));
  h.packing_library = fixed_string(data + off::kPackingLibrary, 32);
  h.precision = fixed_string(data + off::kPrecision, 32);
  h.producer = fixed_string(data + off::kProducer, 32);
  return h;
}

Result<std::shared_ptr<const PlanFile>> PlanFile::open(const std::string& path,
                                                       const Options& options) {
  KILN_ASSIGN_OR_RETURN(auto mapped, core::MappedFile::open(path));
  auto plan = std::make_shared<PlanFile>();
  plan->file_ = std::move(mapped);
  plan->data_ = plan->file_.data();
  plan->size_ = plan->file_.size();
  Status s = plan->validate(options);
  if (!s.ok()) return s.with_context(path);
  return std::shared_ptr<const PlanFile>(std::move(plan));
}

Result<PlanFile> PlanFile::parse(const uint8_t* data, size_t size, const Options& options) {
  PlanFile plan;
  plan.data_ = data;
  plan.size_ = size;
  KILN_RETURN_IF_ERROR(plan.validate(options));
  return plan;
}

Status PlanFile::validate(const Options& options) {
  KILN_ASSIGN_OR_RETURN(header_, decode_header(data_, size_));
  if (header_.file_size != size_) {
    if (options.verify_checksums) KILN_RETURN_IF_ERROR(verify_header());
    return data_loss("plan truncated or extended: the header says " +
                     std::to_string(header_.file_size) + " bytes, the file has " +
                     std::to_string(size_));
  }
  if (options.verify_checksums) KILN_RETURN_IF_ERROR(verify_checksums());
  return read_sections();
}

Status PlanFile::verify_header() const {
  if (load<uint64_t>(data_ + header_offset::kHeaderChecksum) != header_checksum(data_)) {
    return data_loss("plan header checksum mismatch: the header is corrupt or was modified");
  }
  return ok_status();
}

Status PlanFile::verify_checksums() const {
  KILN_RETURN_IF_ERROR(verify_header());
  if (body_checksum(data_ + kHeaderSize, size_ - kHeaderSize) != header_.body_checksum) {
    return data_loss("plan checksum mismatch: the file is corrupt or was modified");
  }
  return ok_status();
}

Status PlanFile::read_sections() {
  const uint32_t n = header_.num_sections;
  if (n > kMaxSections) return data_loss("plan is corrupt: " + std::to_string(n) + " sections");
  const uint64_t table_end = kHeaderSize + n * kSectionEntrySize;
  if (table_end > size_) return data_loss("plan is corrupt: section table past the end");
  std::set<std::string> names;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t* e = data_ + kHeaderSize + i * kSectionEntrySize;
    Section s;
    s.name = fixed_string(e, kSectionNameSize);
    s.offset = load<uint64_t>(e + kSectionNameSize);
    s.size = load<uint64_t>(e + kSectionNameSize + 8);
    const std::string what = "plan section '" + s.name + "'";
    if (s.name.empty() || !names.insert(s.name).second) {
      return data_loss("plan is corrupt: section name '" + s.name + "' is empty or repeated");
    }
    if (s.offset % kAlignment != 0 || s.offset < table_end || s.offset > size_ ||
        s.size > size_ - s.offset) {
      return data_loss(what + " has offset " + std::to_string(s.offset) + " and size " +
                       std::to_string(s.size) + ", outside the file's " + std::to_string(size_) +
                       " bytes (or unaligned)");
    }
    ranges.emplace_back(s.offset, s.offset + s.size);
    sections_.push_back(std::move(s));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return data_loss("plan sections overlap");
  }
  const std::string_view table = section_bytes(kSectionTensors);
  if (find_section(kSectionTensors) == nullptr || find_section(kSectionWeights) == nullptr) {
    return data_loss("plan has no tensors or weights section");
  }
  KILN_ASSIGN_OR_RETURN(tensors_, decode_tensor_table(table, section_bytes(kSectionWeights)));
  return ok_status();
}

const Section* PlanFile::find_section(std::string_view name) const {
  for (const Section& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::string_view PlanFile::section_bytes(std::string_view name) const {
  const Section* s = find_section(name);
  if (s == nullptr) return {};
  return {reinterpret_cast<const char*>(data_ + s->offset), static_cast<size_t>(s->size)};
}

const TensorInfo* PlanFile::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

bool is_plan_file(const std::string& path) {
  if (!core::file_exists(path)) return false;
  std::ifstream f(path, std::ios::binary);
  char magic[sizeof(kMagic)] = {};
  f.read(magic, sizeof(magic));
  return f.gcount() == sizeof(magic) && std::memcmp(magic, kMagic, sizeof(kMagic)) == 0;
}

void reseal(uint8_t* data, size_t size) {
  if (size < kHeaderSize) return;
  const uint64_t body = body_checksum(data + kHeaderSize, size - kHeaderSize);
  std::memcpy(data + header_offset::kBodyChecksum, &body, 8);
  const uint64_t head = header_checksum(data);
  std::memcpy(data + header_offset::kHeaderChecksum, &head, 8);
}

}  // namespace kiln::plan
