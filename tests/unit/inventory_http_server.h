#pragma once
// A tiny HTTP/1.1 server for unit tests: listens on 127.0.0.1 on a port the
// kernel picks, serves one request per connection (Connection: close) on its
// own thread, and hands each request to a handler the test supplies. Replies
// can be delayed (to trip a client timeout; the delay is cut short when the
// server stops) or dropped (connection closed without a reply). Every request
// is recorded for assertions.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace lunwatch::testing {

struct HttpRequest {
  std::string method;
  std::string target;  // path?query as sent
  std::string path;
  std::string query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

struct HttpReply {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds delay{0};
  bool drop = false;  // close the connection without answering
};

class LocalHttpServer {
 public:
  using Handler = std::function<HttpReply(const HttpRequest&)>;

  explicit LocalHttpServer(Handler handler) : handler_(std::move(handler)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0) {
      ::close(fd_);
      throw std::runtime_error("bind/listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }

  ~LocalHttpServer() { stop(); }
  LocalHttpServer(const LocalHttpServer&) = delete;
  LocalHttpServer& operator=(const LocalHttpServer&) = delete;

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void set_handler(Handler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = std::move(handler);
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  size_t request_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.size();
  }
  // Waits (with a deadline, never open-ended) until n requests were answered.
  bool wait_for_answered(size_t n, std::chrono::milliseconds deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return answered_ >= n; });
  }

 private:
  void run() {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
      }
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, 20);
      if (r <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }

  bool read_some(int c, std::string& buf) {
    pollfd p{c, POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return false;
      }
      int r = ::poll(&p, 1, 20);
      if (r < 0) return false;
      if (r == 0) continue;
      char tmp[8192];
      ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
      return true;
    }
    return false;
  }

  void serve(int c) {
    std::string buf;
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!read_some(c, buf)) return;
    }
    HttpRequest req;
    std::string head = buf.substr(0, head_end);
    size_t line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    size_t sp1 = first.find(' '), sp2 = first.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) return;
    req.method = first.substr(0, sp1);
    req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    req.query = q == std::string::npos ? "" : req.target.substr(q + 1);
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      std::string line = head.substr(pos, e - pos);
      pos = e + 2;
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
      size_t v = line.find_first_not_of(' ', colon + 1);
      req.headers[name] = v == std::string::npos ? "" : line.substr(v);
    }
    size_t want = 0;
    if (auto it = req.headers.find("content-length"); it != req.headers.end()) want = std::stoul(it->second);
    req.body = buf.substr(head_end + 4);
    while (req.body.size() < want) {
      if (!read_some(c, req.body)) return;
    }

    Handler handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(req);
      handler = handler_;
    }
    HttpReply reply = handler ? handler(req) : HttpReply{404, {}, "no handler"};
    // A delayed reply ends early when the server stops or the client gives up
    // (closes its end), so a timeout test does not hold up the next request.
    auto until = std::chrono::steady_clock::now() + reply.delay;
    while (std::chrono::steady_clock::now() < until) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return stopping_; })) break;
      }
      pollfd p{c, POLLIN | POLLRDHUP, 0};
      char peek;
      if (::poll(&p, 1, 0) > 0 && ((p.revents & (POLLRDHUP | POLLHUP)) != 0 || ::recv(c, &peek, 1, MSG_PEEK) == 0)) {
        reply.drop = true;
        break;
      }
    }
    if (!reply.drop) {
      std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\n";
      bool has_type = false;
      for (const auto& [k, v] : reply.headers) {
        out += k + ": " + v + "\r\n";
        std::string lk = k;
        std::transform(lk.begin(), lk.end(), lk.begin(), [](unsigned char ch) { return std::tolower(ch); });
        has_type = has_type || lk == "content-type";
      }
      if (!has_type) out += "Content-Type: application/json\r\n";
      out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\nConnection: close\r\n\r\n";
      out += reply.body;
      size_t sent = 0;
      while (sent < out.size()) {
        ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++answered_;
    }
    cv_.notify_all();
  }

  Handler handler_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  size_t answered_ = 0;
  std::vector<HttpRequest> requests_;
};

}  // namespace lunwatch::testing
