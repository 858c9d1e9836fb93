// HTTP body compression with zlib: request bodies sent with Content-Encoding gzip/deflate, and
// infer responses compressed when the client's Accept-Encoding asks for it (as Triton does).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "kiln/status.h"

namespace kiln::server::http {

enum class ContentEncoding { kIdentity, kGzip, kDeflate };

/// The header value of an encoding ("gzip", "deflate"; "" for identity).
std::string_view content_encoding_name(ContentEncoding encoding);

/// Parses a Content-Encoding request header (absent/empty/"identity" = kIdentity).
/// kInvalidArgument naming the encoding when it is not gzip, deflate or identity.
Result<ContentEncoding> parse_content_encoding(std::string_view header);

/// The best encoding an Accept-Encoding header allows (highest q among gzip, deflate,
/// identity; identity when none is acceptable or the header is empty).
ContentEncoding choose_response_encoding(std::string_view accept_encoding);

/// Inflates a gzip body (also concatenated members) or a deflate body (zlib-wrapped, or raw
/// deflate as some clients send). kOutOfRange when the inflated size would pass `max_bytes` (the
/// caller answers 413); kInvalidArgument for corrupt or truncated data.
Result<std::string> inflate_body(std::string_view data, ContentEncoding encoding, size_t max_bytes);

/// Compresses `data` as gzip or zlib-wrapped deflate.
Result<std::string> deflate_body(std::string_view data, ContentEncoding encoding);

}  // namespace kiln::server::http
