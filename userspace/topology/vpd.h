#pragma once
// SCSI identity decoding (SPC-4 VPD pages 0x83 and 0x80), shared by the
// sysfs cache (vpd_pg83/vpd_pg80 hold the raw pages) and fresh SG_IO
// answers, so both are read the same way. Pure.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lunwatch::topology {

// The logical unit's best designator in the kernel's sysfs "wwid" style:
// naa.<hex> (preferred, longest), eui.<hex>, then a SCSI name string, then
// t10.<vendor id text>. Errors on a malformed page or no LU designator.
Result<std::string> parse_vpd83(std::span<const uint8_t> page);

// Unit serial number from VPD page 0x80, trimmed.
Result<std::string> parse_vpd80(std::span<const uint8_t> page);

// Any WWID spelling -> kernel style: "naa.6001..." stays; multipath/udev's
// scsi_id form "36001..." (and "mpath-36001..." dm uuids) becomes
// "naa.6001..."; '2' -> eui., '1' -> t10., '8' -> SCSI name. Lower-cases hex.
std::string normalize_wwid(std::string_view wwid);

}  // namespace lunwatch::topology
