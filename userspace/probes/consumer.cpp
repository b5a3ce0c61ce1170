#include "probes/consumer.h"

#include "common/log.h"
#include "probes/decode.h"

namespace lunwatch::probes {

void consume_record(std::span<const uint8_t> record, ConsumerStats& stats, const EventHandler& handler) {
  auto ev = decode_event(record);
  if (!ev.ok()) {
    uint64_t* counter = &stats.decode_bad_size;
    if (ev.error().code == Errc::kTruncated) counter = &stats.decode_truncated;
    if (ev.error().code == Errc::kUnknownType) counter = &stats.decode_unknown;
    if ((*counter)++ == 0)
      log::warn("dropped a kernel record: " + ev.error().message + " (counted; further ones silent)");
    return;
  }
  ev->set_seq(++stats.events);
  handler(std::move(ev.value()));
}

}  // namespace lunwatch::probes
