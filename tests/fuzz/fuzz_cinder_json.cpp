// Cinder attachments pages (connection_info included) and Keystone token bodies.
#include "fuzz_util.h"
#include "inventory/cinder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = lunwatch::fuzz::text(data, size);
  (void)lunwatch::inventory::parse_attachments_page(t);
  (void)lunwatch::inventory::parse_keystone_token(t);
  (void)lunwatch::inventory::parse_cinder_time(t);
  return 0;
}
