// /etc/multipath.conf and conf.d files: audit::parse_multipath_conf.
#include "audit/multipath_conf.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)lunwatch::audit::parse_multipath_conf(lunwatch::fuzz::text(data, size), "multipath.conf");
  return 0;
}
