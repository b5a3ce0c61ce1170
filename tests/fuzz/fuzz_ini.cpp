// oslo.config INI (nova.conf, cinder.conf, lunwatch.conf): parse, then resolve
// every option ($-interpolation) and read it as a list and a boolean.
#include "common/ini.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c = lunwatch::ini::Config::parse(lunwatch::fuzz::text(data, size), "fuzz.conf");
  if (!c) return 0;
  int budget = 64;  // options resolved per input: enough for every shape, cheap per run
  for (const auto& name : c->section_names())
    for (const auto& e : c->section(name)->entries) {
      if (--budget < 0) return 0;
      auto v = c->resolved(name, e.key);
      if (v) {
        (void)lunwatch::ini::parse_list(v.value());
        (void)lunwatch::ini::parse_bool(v.value());
      }
    }
  return 0;
}
