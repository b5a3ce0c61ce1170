#pragma once
// Recordings: every event the correlator consumed, in order, as
// length-delimited v1::Event messages after a magic line. `lunwatch replay`
// feeds them to a fresh correlator and gets the same alerts.
#include <cstdio>
#include <functional>
#include <string>

#include "common/result.h"
#include "lunwatch.pb.h"

namespace lunwatch::sinks {

inline constexpr char kRecordingMagic[] = "LUNWATCH-RECORDING 1\n";

class RecordWriter {
 public:
  static Result<std::unique_ptr<RecordWriter>> open(const std::string& path);
  ~RecordWriter();
  bool write(const v1::Event& ev);
  uint64_t written() const { return written_; }

 private:
  explicit RecordWriter(std::FILE* f) : f_(f) {}
  std::FILE* f_;
  uint64_t written_ = 0;
};

// Calls fn for each event; stops with an error on a truncated or corrupt
// record (the events before it were delivered), or a wrong magic.
Result<uint64_t> read_recording(const std::string& path, const std::function<void(v1::Event&&)>& fn);

}  // namespace lunwatch::sinks
