// Ring-buffer records from the BPF programs: probes::decode_event, then the
// JSON rendering every decoded event goes through.
#include "fuzz_util.h"
#include "probes/decode.h"
#include "sinks/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ev = lunwatch::probes::decode_event(std::span<const uint8_t>(data, size));
  if (ev) (void)lunwatch::sinks::to_json(ev.value());
  return 0;
}
