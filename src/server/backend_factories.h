// The backends kiln serves, one factory each; backend_registry.cc picks among them.
#pragma once

#include "server/backend.h"

namespace kiln::server {

/// "identity": OUTPUTn = INPUTn.
Result<std::unique_ptr<ModelBackend>> create_identity_backend(const BackendContext& context,
                                                              inference::ModelConfig* config);

/// "kiln": a BERT-family encoder (Hugging Face directory) run by kiln's engine, with text
/// (BYTES, tokenized in the server) or token-id inputs.
Result<std::unique_ptr<ModelBackend>> create_encoder_backend(const BackendContext& context,
                                                             inference::ModelConfig* config);

/// "kiln_search": semantic search over a document collection (an embedding model and a vector
/// index), with query and add-documents requests.
Result<std::unique_ptr<ModelBackend>> create_search_backend(const BackendContext& context,
                                                            inference::ModelConfig* config);

}  // namespace kiln::server
