// Fuzzes the config.pbtxt path the server takes for every model it loads: text-format parse,
// the unsupported-field check, value validation and the JSON printer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = kiln::server::parse_model_config(text);
  if (!config.ok()) return 0;
  (void)kiln::server::check_supported_fields(*config);
  (void)kiln::server::validate_model_config(*config);
  (void)kiln::server::model_config_to_json(*config);
  auto json = kiln::server::parse_model_config_json(text);
  if (json.ok()) (void)kiln::server::validate_model_config(*json);
  return 0;
}
