// JSON attachment records (--attachments / [agent] attachments).
#include "fuzz_util.h"
#include "inventory/file_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)lunwatch::inventory::parse_attachment_file(lunwatch::fuzz::text(data, size));
  return 0;
}
