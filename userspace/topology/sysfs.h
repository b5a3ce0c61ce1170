#pragma once
// The host's SCSI/iSCSI/FC/dm-multipath layout read from a sysfs root (tests
// point it at a fixture tree). Cached identities only; verified ones come
// from SG_IO (sgio.h) and are merged by the caller. A device that vanishes
// mid-read is skipped, never an error for the whole snapshot.
#include <string>

#include "lunwatch.pb.h"

namespace lunwatch::topology {

struct ReadStats {
  uint64_t vanished = 0;  // entries that disappeared while being read
};

v1::Topology read_topology(const std::string& sysfs_root, ReadStats* stats = nullptr);

// "host:channel:target:lun" -> address; false when malformed.
bool parse_hctl(const std::string& s, v1::ScsiAddress* out);

}  // namespace lunwatch::topology
