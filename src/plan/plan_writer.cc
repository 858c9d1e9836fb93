#include "plan/plan_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include "plan/checksum.h"

namespace kiln::plan {

namespace {

// A NUL-padded field of `n` bytes (the header starts zeroed); longer strings are cut to n - 1.
void put_fixed(uint8_t* dst, size_t n, const std::string& s) {
  s.copy(reinterpret_cast<char*>(dst), std::min(s.size(), n - 1));
}

template <typename T>
void put(uint8_t* dst, T v) {
  std::memcpy(dst, &v, sizeof(T));
}

// Writes the body through the checksum, padding with zeros to aligned offsets.
class BodyStream {
 public:
  explicit BodyStream(std::ofstream* out) : out_(out), pos_(kHeaderSize) {}
  void write(const void* data, size_t size) {
    out_->write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    hasher_.update(data, size);
    pos_ += size;
  }
  void pad_to(uint64_t offset) {
    static const uint8_t zeros[kAlignment] = {};
    while (pos_ < offset) write(zeros, std::min<uint64_t>(offset - pos_, kAlignment));
  }
  uint64_t pos() const { return pos_; }
  uint64_t checksum() { return hasher_.finish(); }

 private:
  std::ofstream* out_;
  uint64_t pos_;
  BodyHasher hasher_;
};

}  // namespace

void PlanWriter::add_section(std::string name, std::string bytes) {
  sections_.emplace_back(std::move(name), std::move(bytes));
}

void PlanWriter::add_tensor(TensorEntry entry, const void* data, const float* scales) {
  tensors_.push_back({std::move(entry), data, scales, {}});
}

void PlanWriter::add_tensor(TensorEntry entry, std::vector<uint8_t> bytes) {
  entry.nbytes = bytes.size();
  tensors_.push_back({std::move(entry), nullptr, nullptr, std::move(bytes)});
}

Status PlanWriter::write(const std::string& path) const {
  // Tensor offsets inside the weights section, each aligned.
  std::vector<TensorEntry> entries;
  uint64_t weights_size = 0;
  for (const auto& t : tensors_) {
    TensorEntry e = t.entry;
    e.offset = align_up(weights_size);
    weights_size = e.offset + e.nbytes;
    if (e.num_scales > 0) {
      e.scales_offset = align_up(weights_size);
      weights_size = e.scales_offset + e.num_scales * sizeof(float);
    }
    entries.push_back(std::move(e));
  }
  const std::string table = encode_tensor_table(entries);
  std::vector<Section> layout;
  const size_t n = sections_.size() + 2;
  uint64_t end = kHeaderSize + n * kSectionEntrySize;
  for (const auto& [name, bytes] : sections_) {
    layout.push_back({name, align_up(end), bytes.size()});
    end = layout.back().offset + bytes.size();
  }
  layout.push_back({std::string(kSectionTensors), align_up(end), table.size()});
  end = layout.back().offset + table.size();
  layout.push_back({std::string(kSectionWeights), align_up(end), weights_size});
  end = layout.back().offset + weights_size;

  const std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) return invalid_argument("cannot write " + tmp);
  std::vector<uint8_t> header(kHeaderSize, 0);
  out.write(reinterpret_cast<const char*>(header.data()), kHeaderSize);
  BodyStream body(&out);
  for (const Section& s : layout) {
    uint8_t entry[kSectionEntrySize] = {};
    put_fixed(entry, kSectionNameSize, s.name);
    put(entry + kSectionNameSize, s.offset);
    put(entry + kSectionNameSize + 8, s.size);
    body.write(entry, sizeof(entry));
  }
  for (size_t i = 0; i < sections_.size(); ++i) {
    body.pad_to(layout[i].offset);
    body.write(sections_[i].second.data(), sections_[i].second.size());
  }
  body.pad_to(layout[n - 2].offset);
  body.write(table.data(), table.size());
  const uint64_t weights_at = layout[n - 1].offset;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const auto& t = tensors_[i];
    body.pad_to(weights_at + entries[i].offset);
    body.write(t.owned.empty() ? t.data : t.owned.data(), entries[i].nbytes);
    if (entries[i].num_scales > 0) {
      body.pad_to(weights_at + entries[i].scales_offset);
      body.write(t.scales, entries[i].num_scales * sizeof(float));
    }
  }
  body.pad_to(end);

  namespace off = header_offset;
  uint8_t* h = header.data();
  std::memcpy(h, kMagic, sizeof(kMagic));
  put(h + off::kVersion, header_.format_version);
  put(h + off::kHeaderSize, static_cast<uint32_t>(kHeaderSize));
  put(h + off::kFlags, header_.flags);
  put(h + off::kFileSize, end);
  put(h + off::kBodyChecksum, body.checksum());
  put(h + off::kNumSections, static_cast<uint32_t>(n));
  put_fixed(h + off::kBackend, 16, header_.backend);
  put_fixed(h + off::kFeatures, 64, join_features(header_.features));
  put_fixed(h + off::kPackingLibrary, 32, header_.packing_library);
  put_fixed(h + off::kPrecision, 32, header_.precision);
  put_fixed(h + off::kProducer, 32, header_.producer);
  const uint64_t head = hash64(h, kHeaderSize);  // computed with its own field still zero
  put(h + off::kHeaderChecksum, head);
  out.seekp(0);
  out.write(reinterpret_cast<const char*>(h), kHeaderSize);
  out.close();
  if (!out) {
    std::remove(tmp.c_str());
    return resource_exhausted("cannot write " + tmp + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return invalid_argument("cannot rename " + tmp + " to " + path);
  }
  return ok_status();
}

}  // namespace kiln::plan
