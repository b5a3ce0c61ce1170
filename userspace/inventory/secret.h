#pragma once
// A credential in memory: no implicit conversion to string (so it cannot slip
// into a log line or an Error by accident), wiped when destroyed, and a
// redactor that scrubs known secret values from text before it is shown.
#include <openssl/crypto.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace lunwatch::inventory {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : v_(std::move(value)) {}
  Secret(const Secret&) = default;
  Secret& operator=(const Secret& o) {
    if (this != &o) {
      wipe();
      v_ = o.v_;
    }
    return *this;
  }
  Secret(Secret&& o) noexcept : v_(std::move(o.v_)) { o.wipe(); }
  Secret& operator=(Secret&& o) noexcept {
    if (this != &o) {
      wipe();
      v_ = std::move(o.v_);
      o.wipe();
    }
    return *this;
  }
  ~Secret() { wipe(); }

  const std::string& reveal() const { return v_; }
  bool empty() const { return v_.empty(); }

 private:
  void wipe() {
    if (!v_.empty()) OPENSSL_cleanse(v_.data(), v_.size());
    v_.clear();
  }
  std::string v_;
};

// Wipes a std::string that held a secret (a request body with a password).
inline void wipe_string(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// Replaces every occurrence of each non-trivial secret with "***", and
// control characters with '?', so server-provided text is safe to show.
inline std::string redact(std::string text, std::initializer_list<const Secret*> secrets) {
  for (const Secret* s : secrets) {
    if (s == nullptr || s->reveal().size() < 4) continue;
    const std::string& v = s->reveal();
    for (size_t pos = text.find(v); pos != std::string::npos; pos = text.find(v, pos + 3))
      text.replace(pos, v.size(), "***");
  }
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return text;
}

}  // namespace lunwatch::inventory
