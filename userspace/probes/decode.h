#pragma once
// Ring-buffer record -> typed event. Pure: no I/O, no names (annotation adds
// device names and cgroup paths later), fed canned bytes in unit tests.
#include <cstdint>
#include <span>

#include "common/result.h"
#include "lunwatch.pb.h"

namespace lunwatch::probes {

// Decodes one record laid out as in bpf/lunwatch.h. Errors: kTruncated (shorter
// than its header or its type's struct), kUnknownType, kParse (size field lies).
Result<v1::Event> decode_event(std::span<const uint8_t> record);

// "host:channel:target:lun" with "-" for wildcard parts (~0).
std::string format_hctl(uint32_t host, uint32_t channel, uint32_t target, uint64_t lun);

}  // namespace lunwatch::probes
