// Glance image lists (audit --images).
#include "audit/images.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)lunwatch::audit::parse_image_list(lunwatch::fuzz::text(data, size));
  return 0;
}
