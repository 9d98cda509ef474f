// Fuzz target: an HTTP request's bytes as the listener reads them — the header block checked
// for obs-fold, then Boost.Beast's request parser with the listener's limits (16 KiB of
// headers, 8 MiB of body), the transfer coding check. Property: never crashes or hangs.
#include <boost/beast/http.hpp>

#include <cstdint>
#include <string_view>

#include "server/listener.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const assent::server::ServerOptions options;
  const size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos || end + 4 > options.header_limit) return 0;
  if (assent::server::HasObsFold(bytes.substr(0, end + 4))) return 0;
  http::request_parser<http::string_body> parser;
  parser.header_limit(options.header_limit);
  parser.body_limit(options.body_limit);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < bytes.size() && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec == http::error::need_more) break;
    if (ec || n == 0) break;
    used += n;
  }
  if (parser.is_header_done()) {
    (void)parser.get()[http::field::transfer_encoding];
    (void)parser.content_length();
  }
  return 0;
}
