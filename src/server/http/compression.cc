#include "server/http/compression.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>

namespace kiln::server::http {
namespace {

constexpr size_t kChunk = 64 * 1024;

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// RAII for a z_stream in inflate mode.
class Inflater {
 public:
  explicit Inflater(int window_bits) { ok_ = inflateInit2(&zs_, window_bits) == Z_OK; }
  ~Inflater() {
    if (ok_) inflateEnd(&zs_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  bool ok() const { return ok_; }
  z_stream& zs() { return zs_; }

 private:
  z_stream zs_{};
  bool ok_ = false;
};

enum class InflateOutcome { kDone, kCorrupt, kTooLarge };

InflateOutcome run_inflate(std::string_view data, int window_bits, bool multi_member,
                           size_t max_bytes, std::string* out, std::string* why) {
  Inflater inf(window_bits);
  if (!inf.ok()) {
    *why = "cannot initialise zlib";
    return InflateOutcome::kCorrupt;
  }
  z_stream& zs = inf.zs();
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  // Bodies are bounded by max_body_bytes (far below 4 GiB), but stay safe for uInt.
  if (data.size() > std::numeric_limits<uInt>::max()) {
    *why = "compressed body too large";
    return InflateOutcome::kTooLarge;
  }
  zs.avail_in = static_cast<uInt>(data.size());
  out->clear();
  while (true) {
    const size_t old = out->size();
    if (old >= max_bytes + 1) return InflateOutcome::kTooLarge;
    const size_t grow = std::min(kChunk, max_bytes + 1 - old);
    out->resize(old + grow);
    zs.next_out = reinterpret_cast<Bytef*>(out->data() + old);
    zs.avail_out = static_cast<uInt>(grow);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    out->resize(old + grow - zs.avail_out);
    if (out->size() > max_bytes) return InflateOutcome::kTooLarge;
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0 || !multi_member) {
        if (zs.avail_in != 0) {
          *why = std::to_string(zs.avail_in) + " bytes of trailing data after the stream";
          return InflateOutcome::kCorrupt;
        }
        return InflateOutcome::kDone;
      }
      if (inflateReset(&zs) != Z_OK) {  // next gzip member
        *why = "cannot reset zlib";
        return InflateOutcome::kCorrupt;
      }
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      *why = "truncated compressed data";
      return InflateOutcome::kCorrupt;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      *why = zs.msg != nullptr ? zs.msg : "zlib error " + std::to_string(rc);
      return InflateOutcome::kCorrupt;
    }
  }
}

}  // namespace

std::string_view content_encoding_name(ContentEncoding encoding) {
  switch (encoding) {
    case ContentEncoding::kGzip:
      return "gzip";
    case ContentEncoding::kDeflate:
      return "deflate";
    default:
      return "";
  }
}

Result<ContentEncoding> parse_content_encoding(std::string_view header) {
  const std::string e = lower_trimmed(header);
  if (e.empty() || e == "identity") return ContentEncoding::kIdentity;
  if (e == "gzip" || e == "x-gzip") return ContentEncoding::kGzip;
  if (e == "deflate") return ContentEncoding::kDeflate;
  return invalid_argument("unsupported Content-Encoding '" + std::string(header) +
                          "': use gzip, deflate or identity");
}

ContentEncoding choose_response_encoding(std::string_view accept_encoding) {
  ContentEncoding best = ContentEncoding::kIdentity;
  double best_q = 0;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::string_view item = accept_encoding.substr(0, comma);
    accept_encoding = comma == std::string_view::npos ? "" : accept_encoding.substr(comma + 1);
    double q = 1;
    const size_t semi = item.find(';');
    if (semi != std::string_view::npos) {
      const std::string param = lower_trimmed(item.substr(semi + 1));
      if (param.rfind("q=", 0) == 0) q = std::strtod(param.c_str() + 2, nullptr);
      item = item.substr(0, semi);
    }
    const std::string name = lower_trimmed(item);
    ContentEncoding e;
    if (name == "gzip") {
      e = ContentEncoding::kGzip;
    } else if (name == "deflate") {
      e = ContentEncoding::kDeflate;
    } else if (name == "identity") {
      e = ContentEncoding::kIdentity;
    } else {
      continue;
    }
    if (q > best_q) {
      best = e;
      best_q = q;
    }
  }
  return best;
}

Result<std::string> inflate_body(std::string_view data, ContentEncoding encoding,
                                 size_t max_bytes) {
  std::string out;
  if (encoding == ContentEncoding::kIdentity) {
    if (data.size() > max_bytes) return out_of_range("request body exceeds the size limit");
    return std::string(data);
  }
  std::string why;
  const bool gzip = encoding == ContentEncoding::kGzip;
  // gzip: 16+15 (gzip wrapper); deflate: 32+15 auto-detects a zlib or gzip wrapper.
  InflateOutcome r =
      run_inflate(data, gzip ? 16 + MAX_WBITS : 32 + MAX_WBITS, gzip, max_bytes, &out, &why);
  if (r == InflateOutcome::kCorrupt && !gzip) {
    std::string raw_why;  // some clients send raw deflate without the zlib wrapper
    r = run_inflate(data, -MAX_WBITS, false, max_bytes, &out, &raw_why);
  }
  if (r == InflateOutcome::kTooLarge) {
    return out_of_range("the " + std::string(content_encoding_name(encoding)) +
                        " request body inflates past the limit of " + std::to_string(max_bytes) +
                        " bytes");
  }
  if (r == InflateOutcome::kCorrupt) {
    return invalid_argument("request body is not valid " +
                            std::string(content_encoding_name(encoding)) + " data: " + why);
  }
  return out;
}

Result<std::string> deflate_body(std::string_view data, ContentEncoding encoding) {
  if (encoding == ContentEncoding::kIdentity) return std::string(data);
  z_stream zs{};
  const int bits = encoding == ContentEncoding::kGzip ? 16 + MAX_WBITS : MAX_WBITS;
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return internal_error("cannot initialise zlib for response compression");
  }
  if (data.size() > std::numeric_limits<uInt>::max()) {
    deflateEnd(&zs);
    return internal_error("response too large to compress");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return internal_error("zlib failed to compress the response");
  return out;
}

}  // namespace kiln::server::http
