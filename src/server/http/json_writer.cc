#include "server/http/json_writer.h"

#include <type_traits>
#include <variant>

namespace kiln::server::http {
namespace {

std::string finish(const rapidjson::StringBuffer& buffer) {
  return std::string(buffer.GetString(), buffer.GetSize());
}

void write_key(JsonWriter& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_tensor_metadata(JsonWriter& w, const std::vector<TensorMetadata>& tensors) {
  w.StartArray();
  for (const TensorMetadata& t : tensors) {
    w.StartObject();
    write_key(w, "name");
    write_string(w, t.name);
    write_key(w, "datatype");
    write_string(w, datatype_name(t.datatype));
    write_key(w, "shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

void write_duration(JsonWriter& w, std::string_view key, const Duration& d) {
  write_key(w, key);
  w.StartObject();
  write_key(w, "count");
  w.Uint64(d.count);
  write_key(w, "ns");
  w.Uint64(d.ns);
  w.EndObject();
}

}  // namespace

void write_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_parameters(JsonWriter& w, const Parameters& parameters) {
  w.StartObject();
  for (const auto& [name, value] : parameters) {
    write_key(w, name);
    std::visit(
        [&w](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            w.Bool(v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            w.Int64(v);
          } else if constexpr (std::is_same_v<T, double>) {
            w.Double(v);
          } else {
            write_string(w, v);
          }
        },
        value);
  }
  w.EndObject();
}

std::string error_json(std::string_view message) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_key(w, "error");
  write_string(w, message);
  w.EndObject();
  return finish(buffer);
}

std::string server_metadata_json(const ServerMetadata& metadata) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_key(w, "name");
  write_string(w, metadata.name);
  write_key(w, "version");
  write_string(w, metadata.version);
  write_key(w, "extensions");
  w.StartArray();
  for (const std::string& e : metadata.extensions) write_string(w, e);
  w.EndArray();
  w.EndObject();
  return finish(buffer);
}

std::string model_metadata_json(const ModelMetadata& metadata) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_key(w, "name");
  write_string(w, metadata.name);
  write_key(w, "versions");
  w.StartArray();
  for (const std::string& v : metadata.versions) write_string(w, v);
  w.EndArray();
  write_key(w, "platform");
  write_string(w, metadata.platform);
  write_key(w, "inputs");
  write_tensor_metadata(w, metadata.inputs);
  write_key(w, "outputs");
  write_tensor_metadata(w, metadata.outputs);
  w.EndObject();
  return finish(buffer);
}

std::string statistics_json(const std::vector<ModelStatistics>& stats) {
  // perf_analyzer indexes every one of these members and reads them with GetUint64(), so all
  // are always present and written as numbers (never proto-JSON strings).
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  write_key(w, "model_stats");
  w.StartArray();
  for (const ModelStatistics& s : stats) {
    w.StartObject();
    write_key(w, "name");
    write_string(w, s.name);
    write_key(w, "version");
    write_string(w, s.version);
    write_key(w, "last_inference");
    w.Uint64(s.last_inference_ms);
    write_key(w, "inference_count");
    w.Uint64(s.inference_count);
    write_key(w, "execution_count");
    w.Uint64(s.execution_count);
    write_key(w, "inference_stats");
    w.StartObject();
    write_duration(w, "success", s.success);
    write_duration(w, "fail", s.fail);
    write_duration(w, "queue", s.queue);
    write_duration(w, "compute_input", s.compute_input);
    write_duration(w, "compute_infer", s.compute_infer);
    write_duration(w, "compute_output", s.compute_output);
    write_duration(w, "cache_hit", s.cache_hit);
    write_duration(w, "cache_miss", s.cache_miss);
    w.EndObject();
    write_key(w, "batch_stats");
    w.StartArray();
    for (const BatchStatistics& b : s.batch_stats) {
      w.StartObject();
      write_key(w, "batch_size");
      w.Uint64(b.batch_size);
      write_duration(w, "compute_input", b.compute_input);
      write_duration(w, "compute_infer", b.compute_infer);
      write_duration(w, "compute_output", b.compute_output);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return finish(buffer);
}

std::string repository_index_json(const std::vector<RepositoryEntry>& entries) {
  // Triton leaves "version" out for a model never loaded and "reason" out when empty.
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartArray();
  for (const RepositoryEntry& e : entries) {
    w.StartObject();
    write_key(w, "name");
    write_string(w, e.name);
    if (!e.version.empty()) {
      write_key(w, "version");
      write_string(w, e.version);
    }
    write_key(w, "state");
    write_string(w, e.state);
    if (!e.reason.empty()) {
      write_key(w, "reason");
      write_string(w, e.reason);
    }
    w.EndObject();
  }
  w.EndArray();
  return finish(buffer);
}

}  // namespace kiln::server::http
