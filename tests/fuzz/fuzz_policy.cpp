// Cinder policy files, JSON and YAML, and the rule evaluator over them.
#include "audit/policy.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = lunwatch::fuzz::text(data, size);
  for (const char* name : {"policy.json", "policy.yaml"}) {
    auto p = lunwatch::audit::parse_policy(t, name);
    if (!p) continue;
    for (const auto& [rule, _] : p->rules) (void)lunwatch::audit::evaluate_for_non_service(p.value(), rule);
  }
  return 0;
}
