// SCSI INQUIRY VPD pages 0x83 (device identification) and 0x80 (serial).
#include "fuzz_util.h"
#include "topology/vpd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> page(data, size);
  auto w = lunwatch::topology::parse_vpd83(page);
  if (w) (void)lunwatch::topology::normalize_wwid(w.value());
  (void)lunwatch::topology::parse_vpd80(page);
  (void)lunwatch::topology::normalize_wwid(lunwatch::fuzz::text(data, size));
  return 0;
}
