// JSON bodies of the HTTP frontend (Triton's exact field names and types) and the RapidJSON
// writer they share. Internal to src/server/http.
#pragma once

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>
#include <vector>

#include "kiln/server.h"

namespace kiln::server::http {

/// RapidJSON writer used for every body: NaN/Inf allowed (Triton writes them for FP outputs).
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer, rapidjson::UTF8<>, rapidjson::UTF8<>,
                                     rapidjson::CrtAllocator, rapidjson::kWriteNanAndInfFlag>;

/// Writes a JSON string of arbitrary bytes.
void write_string(JsonWriter& w, std::string_view s);
/// Writes a KServe "parameters" object.
void write_parameters(JsonWriter& w, const Parameters& parameters);

/// {"error": message}: the body of every error response.
std::string error_json(std::string_view message);
/// GET /v2: {"name", "version", "extensions": [...]}.
std::string server_metadata_json(const ServerMetadata& metadata);
/// GET /v2/models/{m}: {"name", "versions", "platform", "inputs", "outputs"}.
std::string model_metadata_json(const ModelMetadata& metadata);
/// GET .../stats: {"model_stats": [...]} with every field perf_analyzer reads as numbers.
std::string statistics_json(const std::vector<ModelStatistics>& stats);
/// POST /v2/repository/index: [{"name", "version"?, "state", "reason"?}, ...].
std::string repository_index_json(const std::vector<RepositoryEntry>& entries);

}  // namespace kiln::server::http
