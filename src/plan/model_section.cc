// The "model" section, as JSON (small; readable with `strings`).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/json.h"
#include "plan/plan_format.h"
#include "plan/sections.h"

namespace kiln::plan {

namespace {

constexpr PoolingMode kPoolingModes[] = {PoolingMode::kMean, PoolingMode::kCls, PoolingMode::kMax,
                                         PoolingMode::kMeanSqrtLen};
constexpr const char* kHeadActivations[] = {"none", "tanh", "relu"};

Status corrupt(const std::string& detail) {
  return data_loss("plan section 'model' is corrupt: " + detail);
}

}  // namespace

std::string encode_model(const ModelRecord& r) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  str("config");
  str(r.config_json);
  str("task");
  str(task_name(r.task));
  str("labels");
  w.StartArray();
  for (const auto& l : r.labels) str(l);
  w.EndArray();
  str("pooling");
  w.StartObject();
  str("mode");
  str(pooling_mode_name(r.pooling.mode));
  str("normalize");
  w.Bool(r.pooling.normalize);
  str("max_seq_length");
  w.Int64(r.pooling.max_seq_length);
  str("sentence_transformers");
  w.Bool(r.pooling.from_sentence_transformers);
  w.EndObject();
  str("head_activation");
  str(kHeadActivations[static_cast<int>(r.head_activation)]);
  str("num_parameters");
  w.Int64(r.num_parameters);
  str("source");
  str(r.source);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<ModelRecord> decode_model(std::string_view bytes) {
  namespace json = core::json;
  json::Document doc;
  Status s = json::parse(bytes, "plan section 'model'", &doc);
  if (!s.ok()) return data_loss(s.message());
  if (!doc.IsObject()) return corrupt("not a JSON object");
  ModelRecord r;
  auto fail = [](const Status& st) { return corrupt(st.message()); };
  auto config = json::get_string(doc, "config");
  if (!config.ok() || !config->has_value()) return corrupt("no config text");
  r.config_json = **config;
  auto task = json::get_string_or(doc, "task", "");
  if (!task.ok()) return fail(task.status());
  if (!parse_task(*task, &r.task)) return corrupt("unknown task '" + *task + "'");
  if (const json::Value* labels = json::find(doc, "labels")) {
    if (!labels->IsArray()) return corrupt("labels is not an array");
    for (const auto& l : labels->GetArray()) {
      if (!l.IsString()) return corrupt("a label is not a string");
      r.labels.emplace_back(l.GetString(), l.GetStringLength());
    }
  }
  const json::Value* pooling = json::find(doc, "pooling");
  if (pooling == nullptr || !pooling->IsObject()) return corrupt("no pooling object");
  auto mode = json::get_string_or(*pooling, "mode", "");
  auto normalize = json::get_bool_or(*pooling, "normalize", false);
  auto max_len = json::get_int_or(*pooling, "max_seq_length", 0);
  auto st = json::get_bool_or(*pooling, "sentence_transformers", false);
  if (!mode.ok() || !normalize.ok() || !max_len.ok() || !st.ok()) {
    return corrupt("pooling fields have wrong types");
  }
  bool known = false;
  for (PoolingMode m : kPoolingModes) {
    if (pooling_mode_name(m) == *mode) {
      r.pooling.mode = m;
      known = true;
    }
  }
  if (!known) return corrupt("unknown pooling mode '" + *mode + "'");
  if (*max_len < 0) return corrupt("negative max_seq_length");
  r.pooling.normalize = *normalize;
  r.pooling.max_seq_length = *max_len;
  r.pooling.from_sentence_transformers = *st;
  auto act = json::get_string_or(doc, "head_activation", "none");
  if (!act.ok()) return fail(act.status());
  known = false;
  for (int i = 0; i < 3; ++i) {
    if (*act == kHeadActivations[i]) {
      r.head_activation = static_cast<model::HeadActivation>(i);
      known = true;
    }
  }
  if (!known) return corrupt("unknown head activation '" + *act + "'");
  auto params = json::get_int_or(doc, "num_parameters", 0);
  if (!params.ok()) return fail(params.status());
  r.num_parameters = *params;
  auto source = json::get_string_or(doc, "source", "");
  if (!source.ok()) return fail(source.status());
  r.source = *source;
  return r;
}

}  // namespace kiln::plan
