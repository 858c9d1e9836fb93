// Small text helpers of the task post-processing.
#pragma once

#include <string>
#include <string_view>

namespace kiln::tasks {

/// Lower-cases valid UTF-8 code point by code point (utf8proc's simple case mapping; Python's
/// str.lower differs only for the few characters with multi-character lower forms).
std::string lowercase(std::string_view text);

}  // namespace kiln::tasks
