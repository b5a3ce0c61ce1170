// Recordings (`lunwatch run --record`, read by `lunwatch replay`).
#include "fuzz_util.h"
#include "sinks/json.h"
#include "sinks/recording.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lunwatch::fuzz::MemFile f(data, size);
  (void)lunwatch::sinks::read_recording(f.path(), [](lunwatch::v1::Event&& ev) { (void)lunwatch::sinks::to_json(ev); });
  return 0;
}
