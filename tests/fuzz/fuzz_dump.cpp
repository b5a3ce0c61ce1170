// Capture dumps (`lunwatch dump show|verify`): read_dump and the JSON view.
#include "fuzz_util.h"
#include "sinks/dump.h"
#include "sinks/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lunwatch::fuzz::MemFile f(data, size);
  lunwatch::sinks::DumpCheck check;
  auto d = lunwatch::sinks::read_dump(f.path(), &check);
  if (d) (void)lunwatch::sinks::to_json(d.value());
  return 0;
}
