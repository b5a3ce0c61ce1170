// libvirt domain XML (/run/libvirt/qemu/*.xml): inventory::parse_libvirt_domain.
#include "fuzz_util.h"
#include "inventory/libvirt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)lunwatch::inventory::parse_libvirt_domain(lunwatch::fuzz::text(data, size));
  return 0;
}
