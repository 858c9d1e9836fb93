// The web playground page (web/playground.html), compiled into the server.
#pragma once

#include <string_view>

namespace kiln::server::http {

/// The page's HTML (generated from web/playground.html at build time).
std::string_view playground_html();

}  // namespace kiln::server::http
