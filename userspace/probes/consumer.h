#pragma once
// The userspace end of the ring buffer: record -> decoded event -> handler,
// with decode errors counted by cause. Pure, so tests feed it canned bytes.
#include <cstdint>
#include <functional>
#include <span>

#include "lunwatch.pb.h"

namespace lunwatch::probes {

struct ConsumerStats {
  uint64_t events = 0;
  uint64_t decode_truncated = 0;
  uint64_t decode_unknown = 0;
  uint64_t decode_bad_size = 0;
};

using EventHandler = std::function<void(v1::Event&&)>;

// Decodes one record and hands the event (with its arrival sequence number)
// to handler. A bad record is counted, logged once per cause, and skipped.
void consume_record(std::span<const uint8_t> record, ConsumerStats& stats, const EventHandler& handler);

}  // namespace lunwatch::probes
