// Text and JSON forms of an EvalReport.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <string>

#include "quant/eval.h"

namespace kiln::quant {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string pct(double v) { return fmt("%.2f%%", 100 * v); }
std::string cos6(double v) { return fmt("%.6f", v); }

// One table row: a label and up to three value columns.
void row(std::string* out, const std::string& label, const std::string& a,
         const std::string& b = "", const std::string& c = "") {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "  %-44s %-12s %-12s %s\n", label.c_str(), a.c_str(), b.c_str(),
                c.c_str());
  *out += buf;
}

void cosine_rows(std::string* out, const std::string& what, const CosineStats& s) {
  row(out, what + " (" + std::to_string(s.count) + ")", cos6(s.mean), cos6(s.p1), cos6(s.min));
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key_double(Writer& w, const char* key, double v) {
  w.Key(key);
  w.Double(v);
}

void key_int(Writer& w, const char* key, int64_t v) {
  w.Key(key);
  w.Int64(v);
}

void cosine_json(Writer& w, const char* key, const CosineStats& s) {
  w.Key(key);
  w.StartObject();
  key_double(w, "mean", s.mean);
  key_double(w, "p1", s.p1);
  key_double(w, "min", s.min);
  key_int(w, "count", s.count);
  w.EndObject();
}

}  // namespace

std::string format_report(const EvalReport& r) {
  std::string out = "kiln eval: task " + r.task + ", " + fmt("%.1f", r.seconds) + " s\n";
  row(&out, "cosine to FP32", "mean", "worst 1%", "min");
  cosine_rows(&out, "last hidden states, per token", r.hidden_cosine);
  if (const auto& e = r.embedding) {
    cosine_rows(&out, "pooled embeddings, per text", e->cosine);
    row(&out, "", "reference", "candidate");
    row(&out,
        "retrieval top-" + std::to_string(e->top_k) + " overlap (" + std::to_string(e->queries) +
            " queries)",
        "", pct(e->top_k_overlap));
    row(&out, "retrieval recall@1 (gold paragraph of " + std::to_string(e->corpus) + ")",
        pct(e->reference_recall_1), pct(e->candidate_recall_1));
    row(&out, "retrieval recall@" + std::to_string(e->top_k), pct(e->reference_recall_k),
        pct(e->candidate_recall_k));
    row(&out, "SST-2 probe accuracy, FP32-trained probe", pct(e->probe_reference),
        pct(e->probe_same));
    row(&out, "SST-2 probe accuracy, probe trained on own", pct(e->probe_reference),
        pct(e->probe_retrained));
    row(&out,
        "  (probe: " + std::to_string(e->probe_train) + " train, " + std::to_string(e->probe_test) +
            " dev sentences)",
        "");
  }
  if (const auto& c = r.classification) {
    row(&out, "", "reference", "candidate");
    row(&out, "SST-2 dev argmax agreement (" + std::to_string(c->examples) + ")", "",
        pct(c->agreement));
    if (c->labelled) {
      row(&out, "SST-2 dev accuracy", pct(c->reference_accuracy), pct(c->candidate_accuracy));
    }
    row(&out, "max |logit difference|", "", fmt("%.5f", c->max_logit_diff));
  }
  if (const auto& t = r.tokens) {
    row(&out, "token argmax agreement (" + std::to_string(t->tokens) + " tokens)", "",
        pct(t->agreement));
  }
  if (const auto& q = r.qa) {
    row(&out, "", "reference", "candidate");
    row(&out, "SQuAD v1.1 dev exact match (" + std::to_string(q->examples) + ")",
        pct(q->reference_em), pct(q->candidate_em));
    row(&out, "SQuAD v1.1 dev F1", pct(q->reference_f1), pct(q->candidate_f1));
    row(&out, "same answer as the reference", "", pct(q->agreement));
  }
  for (const auto& n : r.notes) out += "  note: " + n + "\n";
  return out;
}

std::string report_json(const EvalReport& r) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("task");
  w.String(r.task.c_str());
  key_double(w, "seconds", r.seconds);
  cosine_json(w, "hidden_cosine", r.hidden_cosine);
  if (const auto& e = r.embedding) {
    w.Key("embedding");
    w.StartObject();
    cosine_json(w, "cosine", e->cosine);
    key_int(w, "queries", e->queries);
    key_int(w, "corpus", e->corpus);
    key_int(w, "top_k", e->top_k);
    key_double(w, "top_k_overlap", e->top_k_overlap);
    key_double(w, "reference_recall_1", e->reference_recall_1);
    key_double(w, "candidate_recall_1", e->candidate_recall_1);
    key_double(w, "reference_recall_k", e->reference_recall_k);
    key_double(w, "candidate_recall_k", e->candidate_recall_k);
    key_int(w, "probe_train", e->probe_train);
    key_int(w, "probe_test", e->probe_test);
    key_double(w, "probe_reference", e->probe_reference);
    key_double(w, "probe_same", e->probe_same);
    key_double(w, "probe_retrained", e->probe_retrained);
    w.EndObject();
  }
  if (const auto& c = r.classification) {
    w.Key("classification");
    w.StartObject();
    key_int(w, "examples", c->examples);
    key_double(w, "agreement", c->agreement);
    if (c->labelled) {
      key_double(w, "reference_accuracy", c->reference_accuracy);
      key_double(w, "candidate_accuracy", c->candidate_accuracy);
    }
    key_double(w, "max_logit_diff", c->max_logit_diff);
    w.EndObject();
  }
  if (const auto& t = r.tokens) {
    w.Key("tokens");
    w.StartObject();
    key_int(w, "tokens", t->tokens);
    key_double(w, "agreement", t->agreement);
    w.EndObject();
  }
  if (const auto& q = r.qa) {
    w.Key("qa");
    w.StartObject();
    key_int(w, "examples", q->examples);
    key_double(w, "reference_em", q->reference_em);
    key_double(w, "reference_f1", q->reference_f1);
    key_double(w, "candidate_em", q->candidate_em);
    key_double(w, "candidate_f1", q->candidate_f1);
    key_double(w, "agreement", q->agreement);
    w.EndObject();
  }
  w.Key("notes");
  w.StartArray();
  for (const auto& n : r.notes) w.String(n.c_str());
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

}  // namespace kiln::quant
