#include "server/http/api_router.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <utility>
#include <vector>

#include "server/http/compression.h"
#include "server/http/infer_codec.h"
#include "server/http/json_writer.h"
#include "server/http/playground.h"

namespace kiln::server::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one path segment; an invalid escape stays as written.
std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segments;
  if (path.empty() || path.front() != '/') return segments;
  path.remove_prefix(1);
  while (true) {
    const size_t slash = path.find('/');
    segments.push_back(percent_decode(path.substr(0, slash)));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

Route make(Route::Kind kind, std::string model = {}, std::string version = {}) {
  Route r;
  r.kind = kind;
  r.model = std::move(model);
  r.version = std::move(version);
  return r;
}

Route unsupported(std::string feature) {
  Route r = make(Route::Kind::kUnsupported);
  r.feature = std::move(feature);
  return r;
}

// /v2/models/{m}[/versions/{v}][/{action}]; `s` starts at {m}.
Result<Route> match_model(const std::vector<std::string>& s, size_t i) {
  using K = Route::Kind;
  std::string model = s[i++];
  std::string version;
  if (i < s.size() && s[i] == "versions") {
    if (i + 1 >= s.size()) return not_found("no route: missing version after 'versions'");
    version = s[i + 1];
    if (version.empty() || version.find_first_not_of("0123456789") != std::string::npos) {
      return invalid_argument("model version '" + version +
                              "' in the URL is not a non-negative integer");
    }
    i += 2;
  }
  const size_t rest = s.size() - i;
  if (rest == 0) return make(K::kModelMetadata, model, version);
  const std::string& action = s[i];
  if (rest == 1) {
    if (action == "ready") return make(K::kModelReady, model, version);
    if (action == "config") return make(K::kModelConfig, model, version);
    if (action == "infer") return make(K::kModelInfer, model, version);
    if (action == "stats") return make(K::kModelStats, model, version);
    if (action == "generate" || action == "generate_stream") {
      return unsupported("the generate extension (/generate, /generate_stream)");
    }
  }
  if (rest == 2 && action == "trace" && s[i + 1] == "setting" && version.empty()) {
    return unsupported("trace settings");
  }
  return not_found("no route for this model path");
}

// /v2/{systemsharedmemory,cudasharedmemory}[/region/{r}]/{status,register,unregister}.
bool is_shared_memory_path(const std::vector<std::string>& s) {
  size_t i = 2;
  if (s.size() == 5 && s[2] == "region" && !s[3].empty()) i = 4;
  if (i + 1 != s.size()) return false;
  return s[i] == "status" || s[i] == "register" || s[i] == "unregister";
}

HttpReply infer_reply(const Result<InferResponse>& result, const OutputFormat& format,
                      ContentEncoding encoding) {
  if (!result.ok()) return HttpReply::error(result.status());
  Result<EncodedInfer> encoded = encode_infer_response(result.value(), format);
  if (!encoded.ok()) return HttpReply::error(encoded.status());
  HttpReply r;
  if (encoded->json_size.has_value()) {
    r.content_type = "application/octet-stream";
    r.headers.emplace_back("Inference-Header-Content-Length", std::to_string(*encoded->json_size));
  } else {
    r.content_type = "application/json";
  }
  r.body = std::move(encoded->body);
  if (encoding != ContentEncoding::kIdentity) {
    // The header length above stays the uncompressed JSON size, as Triton sends it.
    Result<std::string> compressed = deflate_body(r.body, encoding);
    if (compressed.ok()) {
      r.body = std::move(compressed).value();
      r.headers.emplace_back("Content-Encoding", std::string(content_encoding_name(encoding)));
    }
  }
  return r;
}

// Parses an optional JSON object body (empty = {}). Iterative: hostile nesting cannot overflow
// the stack.
Status parse_object_body(const std::string& body, std::string_view what, rapidjson::Document* doc) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    doc->SetObject();
    return ok_status();
  }
  doc->Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());
  if (doc->HasParseError()) {
    return invalid_argument("invalid JSON in " + std::string(what) + " request at byte " +
                            std::to_string(doc->GetErrorOffset()) + ": " +
                            rapidjson::GetParseError_En(doc->GetParseError()));
  }
  if (!doc->IsObject()) return invalid_argument(std::string(what) + " request must be an object");
  return ok_status();
}

// The "parameters" object of a repository request, or null when absent.
Result<const rapidjson::Value*> request_parameters(const rapidjson::Document& doc,
                                                   std::string_view what) {
  auto it = doc.FindMember("parameters");
  if (it == doc.MemberEnd()) return static_cast<const rapidjson::Value*>(nullptr);
  if (!it->value.IsObject()) {
    return invalid_argument(std::string(what) + " 'parameters' must be a JSON object");
  }
  return &it->value;
}

}  // namespace

Result<Route> match_route(std::string_view path) {
  using K = Route::Kind;
  const std::vector<std::string> s = split_path(path);
  auto none = [&] { return not_found("no route for " + std::string(path)); };
  if (path == "/" || path == "/playground") return make(K::kPlayground);
  if (path == "/metrics") return make(K::kMetrics);
  if (s.empty() || s[0] != "v2") return none();
  if (s.size() == 1) return make(K::kServerMetadata);
  const std::string& area = s[1];
  if (area == "health" && s.size() == 3) {
    if (s[2] == "live") return make(K::kHealthLive);
    if (s[2] == "ready") return make(K::kHealthReady);
  }
  if (area == "models" && s.size() == 3 && s[2] == "stats") return make(K::kModelStats);
  if (area == "models" && s.size() >= 3 && !s[2].empty()) {
    Result<Route> r = match_model(s, 2);
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) return none();
    return r;
  }
  if (area == "repository") {
    if (s.size() == 3 && s[2] == "index") return make(K::kRepositoryIndex);
    if (s.size() == 5 && s[2] == "models" && !s[3].empty()) {
      if (s[4] == "load") return make(K::kModelLoad, s[3]);
      if (s[4] == "unload") return make(K::kModelUnload, s[3]);
    }
    if ((s.size() == 4 && s[3] == "index") ||
        (s.size() == 6 && s[3] == "models" && (s[5] == "load" || s[5] == "unload"))) {
      return unsupported("repository names in the URL");
    }
  }
  if (area == "systemsharedmemory" && is_shared_memory_path(s)) {
    return unsupported("system shared memory regions");
  }
  if (area == "cudasharedmemory" && is_shared_memory_path(s)) {
    return unsupported("CUDA shared memory regions");
  }
  if (area == "logging" && s.size() == 2) return unsupported("log settings");
  if (area == "trace" && s.size() == 3 && s[2] == "setting") return unsupported("trace settings");
  return none();
}

std::string_view route_method(Route::Kind kind) {
  switch (kind) {
    case Route::Kind::kModelInfer:
    case Route::Kind::kRepositoryIndex:
    case Route::Kind::kModelLoad:
    case Route::Kind::kModelUnload:
      return "POST";
    case Route::Kind::kUnsupported:
      return "";
    default:
      return "GET";
  }
}

void ApiRouter::handle(const HttpRequestView& request, Responder respond) {
  using K = Route::Kind;
  Result<Route> matched = match_route(request.path);
  if (!matched.ok()) return reply_now(respond, HttpReply::error(matched.status()));
  const Route& route = matched.value();
  const std::string_view method = route_method(route.kind);
  if (!method.empty() && request.method != method) {
    HttpReply r =
        HttpReply::http_error(405, "method " + std::string(request.method) + " is not allowed on " +
                                       std::string(request.path) + "; use " + std::string(method));
    r.headers.emplace_back("Allow", std::string(method));
    return reply_now(respond, std::move(r));
  }
  auto empty = [](unsigned status) {
    HttpReply r;
    r.status = status;
    return r;
  };
  switch (route.kind) {
    case K::kServerMetadata:
      return reply_now(respond, HttpReply::json(server_metadata_json(server_.metadata())));
    case K::kHealthLive:  // Triton: 200 or 400, both with an empty body
      return reply_now(respond, empty(server_.live() ? 200 : 400));
    case K::kHealthReady:
      return reply_now(respond, empty(server_.ready() ? 200 : 400));
    case K::kModelMetadata: {
      Result<ModelMetadata> md = server_.model_metadata(route.model, route.version);
      return reply_now(respond, md.ok() ? HttpReply::json(model_metadata_json(md.value()))
                                        : HttpReply::error(md.status()));
    }
    case K::kModelReady: {
      Result<bool> ready = server_.model_ready(route.model, route.version);
      if (!ready.ok()) return reply_now(respond, HttpReply::error(ready.status()));
      if (!ready.value()) {
        std::string what = "model '" + route.model + "'";
        if (!route.version.empty()) what += " version " + route.version;
        return reply_now(respond, HttpReply::error(failed_precondition(what + " is not ready")));
      }
      return reply_now(respond, empty(200));
    }
    case K::kModelConfig: {
      Result<std::string> config =
          server_.model_config(route.model, route.version, ConfigFormat::kJson);
      return reply_now(respond, config.ok() ? HttpReply::json(std::move(config).value())
                                            : HttpReply::error(config.status()));
    }
    case K::kModelStats: {
      Result<std::vector<ModelStatistics>> stats = server_.statistics(route.model, route.version);
      return reply_now(respond, stats.ok() ? HttpReply::json(statistics_json(stats.value()))
                                           : HttpReply::error(stats.status()));
    }
    case K::kModelInfer:
      return infer(route, request, std::move(respond));
    case K::kRepositoryIndex:
      return reply_now(respond, repository_index(request));
    case K::kModelLoad:
      return reply_now(respond, load(route, request));
    case K::kModelUnload:
      return reply_now(respond, unload(route, request));
    case K::kPlayground: {
      if (request.path == "/") {  // the playground is the server's front page
        HttpReply r;
        r.status = 302;
        r.headers.emplace_back("Location", "/playground");
        return reply_now(respond, std::move(r));
      }
      HttpReply r;
      r.content_type = "text/html; charset=utf-8";
      r.body = std::string(playground_html());
      return reply_now(respond, std::move(r));
    }
    case K::kMetrics: {
      HttpReply r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = server_.metrics_text();
      return reply_now(respond, std::move(r));
    }
    case K::kUnsupported:
      return reply_now(respond,
                       HttpReply::error(unimplemented(route.feature + " are not supported")));
  }
}

void ApiRouter::infer(const Route& route, const HttpRequestView& request, Responder respond) {
  std::optional<size_t> json_size;
  if (request.infer_header_length.has_value()) {
    Result<size_t> n = parse_header_length(*request.infer_header_length, request.body->size());
    if (!n.ok()) return reply_now(respond, HttpReply::error(n.status()));
    json_size = n.value();
  }
  Result<ParsedInfer> parsed =
      parse_infer_request(request.body, json_size, route.model, route.version);
  if (!parsed.ok()) return reply_now(respond, HttpReply::error(parsed.status()));
  const ContentEncoding encoding = choose_response_encoding(request.accept_encoding);
  server_.infer(std::move(parsed->request),
                [respond = std::move(respond), format = std::move(parsed->format),
                 encoding](Result<InferResponse> result) {
                  // Encoding happens on the io thread (ReplyFn), not on this core thread.
                  respond([result = std::move(result), format, encoding] {
                    return infer_reply(result, format, encoding);
                  });
                });
}

HttpReply ApiRouter::repository_index(const HttpRequestView& request) {
  rapidjson::Document doc;
  if (Status s = parse_object_body(*request.body, "repository index", &doc); !s.ok()) {
    return HttpReply::error(s);
  }
  bool ready_only = false;
  if (auto it = doc.FindMember("ready"); it != doc.MemberEnd()) {
    if (!it->value.IsBool()) {
      return HttpReply::error(invalid_argument("repository index 'ready' must be a boolean"));
    }
    ready_only = it->value.GetBool();
  }
  return HttpReply::json(repository_index_json(server_.repository_index(ready_only)));
}

HttpReply ApiRouter::load(const Route& route, const HttpRequestView& request) {
  rapidjson::Document doc;
  if (Status s = parse_object_body(*request.body, "model load", &doc); !s.ok()) {
    return HttpReply::error(s);
  }
  Result<const rapidjson::Value*> params = request_parameters(doc, "model load");
  if (!params.ok()) return HttpReply::error(params.status());
  LoadOptions options;
  if (params.value() != nullptr) {
    for (const auto& m : params.value()->GetObject()) {
      const std::string key(m.name.GetString(), m.name.GetStringLength());
      if (!m.value.IsString()) {
        return HttpReply::error(
            invalid_argument("model load parameter '" + key + "' must be a string"));
      }
      if (key == "config") {
        options.config_json.assign(m.value.GetString(), m.value.GetStringLength());
      } else if (key.starts_with("file:")) {
        return HttpReply::error(
            unimplemented("model load parameter '" + key + "': file overrides are not supported"));
      }  // other string parameters are ignored, as Triton's core ignores unknown ones
    }
  }
  if (Status s = server_.load_model(route.model, options); !s.ok()) return HttpReply::error(s);
  return HttpReply{};
}

HttpReply ApiRouter::unload(const Route& route, const HttpRequestView& request) {
  rapidjson::Document doc;
  if (Status s = parse_object_body(*request.body, "model unload", &doc); !s.ok()) {
    return HttpReply::error(s);
  }
  Result<const rapidjson::Value*> params = request_parameters(doc, "model unload");
  if (!params.ok()) return HttpReply::error(params.status());
  if (params.value() != nullptr) {
    auto it = params.value()->FindMember("unload_dependents");
    // kiln has no ensembles, so there are never dependents to unload; only check the type.
    if (it != params.value()->MemberEnd() && !it->value.IsBool()) {
      return HttpReply::error(invalid_argument("'unload_dependents' must be a boolean"));
    }
  }
  if (Status s = server_.unload_model(route.model); !s.ok()) return HttpReply::error(s);
  return HttpReply{};
}

}  // namespace kiln::server::http
