#pragma once
// A value or an error, for callers that can recover (std::expected arrives in
// C++23; this is the subset we use).
#include <string>
#include <utility>
#include <variant>

namespace lunwatch {

enum class Errc {
  kOk = 0,
  kNotRoot,  // needs CAP_BPF/CAP_SYS_ADMIN
  kNoBtf,    // /sys/kernel/btf/vmlinux missing
  kBpfNotPermitted,
  kMemlock,
  kLoadFailed,
  kIo,
  kParse,
  kTruncated,
  kUnknownType,
  kNotFound,
  kInvalidArgument,
};

struct Error {
  Errc code = Errc::kOk;
  std::string message;
};

// [[nodiscard]]: an ignored Result is an ignored error (-Wunused-result).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Error> v_;
};

// Success or an error, nothing else: `return {};` on success.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return error_; }

 private:
  Error error_;
  bool failed_ = false;
};

inline Error make_error(Errc code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace lunwatch
