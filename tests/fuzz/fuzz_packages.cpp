// dpkg status and Python package metadata (PKG-INFO / METADATA).
#include "audit/packages.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = lunwatch::fuzz::text(data, size);
  (void)lunwatch::audit::parse_dpkg_status(t);
  (void)lunwatch::audit::parse_metadata_headers(t);
  (void)lunwatch::audit::normalize_dist_name(t);
  return 0;
}
