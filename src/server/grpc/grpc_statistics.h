// Conversion of the core's read-only views (statistics, metadata, repository index) into their
// KServe v2 gRPC messages. Pure functions, unit-tested without a network.
#pragma once

#include <vector>

#include "grpc_service.pb.h"
#include "kiln/server.h"

namespace kiln::server {

/// Fills one inference.ModelStatistics, every field perf_analyzer reads (Triton layout).
void encode_model_statistics(const ModelStatistics& stats, inference::ModelStatistics* message);

/// Fills a ModelMetadataResponse (datatypes as protocol names, e.g. "INT64").
void encode_model_metadata(const ModelMetadata& metadata,
                           inference::ModelMetadataResponse* message);

/// Fills a RepositoryIndexResponse.
void encode_repository_index(const std::vector<RepositoryEntry>& entries,
                             inference::RepositoryIndexResponse* message);

}  // namespace kiln::server
