#include "backend/cuda/device_record.h"

#include <cstdio>

#include <rapidjson/error/en.h>

#include "core/json.h"

namespace kiln::backend::cuda {

namespace {

Status corrupt(const std::string& detail) {
  return data_loss("plan section 'device' is corrupt: " + detail);
}

std::string summary_line(const TunedGemm& t) {
  static constexpr const char* kEpilogue[] = {"", " +bias", " +bias+gelu(tanh)", " +bias+relu"};
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "gemm %6lldx%-5lldx%-5lld%-17s %9.2f us (heuristic %9.2f us, %2d timed) %s",
                static_cast<long long>(t.shape.rows), static_cast<long long>(t.shape.out),
                static_cast<long long>(t.shape.in), kEpilogue[static_cast<int>(t.shape.epilogue)],
                t.us, t.heuristic_us, t.candidates, t.kernel.c_str());
  return buf;
}

}  // namespace

std::string encode_device_record(const DeviceRecord& r) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("backend");
  w.String("cuda");
  w.Key("gpu");
  w.String(r.target.gpu.c_str());
  w.Key("cublaslt_version");
  w.Uint64(r.target.cublaslt_version);
  w.Key("fast_gelu");
  w.Bool(r.fast_gelu);
  w.Key("gemms");
  if (r.gemms != nullptr) {
    r.gemms->write_json(w);
  } else {
    w.StartArray();
    w.EndArray();
  }
  w.Key("summary");
  w.StartArray();
  if (r.fast_gelu) w.String("GELU: tanh approximation fused into the FFN-in GEMM (--fast-gelu)");
  if (r.gemms != nullptr && !r.gemms->empty()) {
    double tuned = 0, heuristic = 0;
    for (const TunedGemm& t : r.gemms->entries()) {
      tuned += t.us;
      heuristic += t.heuristic_us;
    }
    char line[256];
    std::snprintf(line, sizeof(line),
                  "GEMM algorithms timed on %s (cuBLASLt %zu): %zu shapes, %.3fx cuBLASLt's "
                  "heuristic choice over all of them",
                  r.target.gpu.c_str(), r.target.cublaslt_version, r.gemms->entries().size(),
                  tuned > 0 ? heuristic / tuned : 0.0);
    w.String(line);
    for (const TunedGemm& t : r.gemms->entries()) w.String(summary_line(t).c_str());
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<DeviceRecord> decode_device_record(std::string_view bytes) {
  namespace json = core::json;
  // Full-precision number parsing: the timings must read back as the very doubles that were
  // written, so that a record re-encodes to the same bytes.
  json::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(bytes.data(), bytes.size());
  if (doc.HasParseError()) {
    return corrupt("invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) + ": " +
                   rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject()) return corrupt("not a JSON object");
  auto backend = json::get_string(doc, "backend");
  if (!backend.ok() || !backend->has_value()) return corrupt("no \"backend\"");
  if (**backend != "cuda") {
    return failed_precondition("plan section 'device' is for backend \"" + **backend +
                               "\", not cuda");
  }
  DeviceRecord r;
  auto gpu = json::get_string_or(doc, "gpu", "");
  auto version = json::get_int_or(doc, "cublaslt_version", 0);
  auto fast_gelu = json::get_bool_or(doc, "fast_gelu", false);
  if (!gpu.ok() || !version.ok() || !fast_gelu.ok() || *version < 0) {
    return corrupt("gpu, cublaslt_version or fast_gelu has the wrong type");
  }
  r.target.gpu = std::move(*gpu);
  r.target.cublaslt_version = static_cast<size_t>(*version);
  r.fast_gelu = *fast_gelu;
  if (const json::Value* gemms = json::find(doc, "gemms")) {
    KILN_ASSIGN_OR_RETURN(GemmTuning t, GemmTuning::from_json(*gemms));
    if (!t.empty()) r.gemms = std::make_shared<const GemmTuning>(std::move(t));
  }
  return r;
}

}  // namespace kiln::backend::cuda
