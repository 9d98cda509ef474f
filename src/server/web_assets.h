// The pages and their CSS and JavaScript, embedded into the binary at build time from web/.
#ifndef ASSENT_SERVER_WEB_ASSETS_H_
#define ASSENT_SERVER_WEB_ASSETS_H_

#include <string_view>
#include <vector>

namespace assent::server {

struct WebAsset {
  std::string_view name;  // "settings.html"
  std::string_view content;
};

const std::vector<WebAsset>& WebAssets();

}  // namespace assent::server

#endif  // ASSENT_SERVER_WEB_ASSETS_H_
