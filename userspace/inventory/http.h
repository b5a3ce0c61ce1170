#pragma once
// A small blocking HTTP client over libcurl for the Keystone and Cinder APIs:
// TLS with an optional CA bundle, connect and total timeouts, a cap on the
// response body, no redirects (a token must never follow a Location header to
// another host), http/https only.
#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "inventory/source.h"

namespace lunwatch::inventory {

struct HttpOptions {
  std::string ca_bundle;  // PEM file; "" = the system store
  bool verify_tls = true;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds total_timeout{30000};
  size_t max_body_bytes = kMaxInputBytes;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

// Ends every request in flight in this process within about a second (a
// shutdown must not wait for a silent endpoint's 30 s timeout); requests
// started afterwards are not affected.
void abort_http_requests();

// "scheme://host:port/path" with any userinfo and query removed: safe to show.
std::string url_for_display(std::string_view url);

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // headers: "Name: value". Transport failures (refused, timeout, TLS, body
  // too large) are Errc::kIo; any HTTP status is a response.
  Result<HttpResponse> request(const std::string& method, const std::string& url,
                               const std::vector<std::string>& headers, const std::string& body = "");
  const HttpOptions& options() const { return options_; }

 private:
  HttpOptions options_;
  void* curl_ = nullptr;  // CURL*, reused for connection keep-alive
};

}  // namespace lunwatch::inventory
