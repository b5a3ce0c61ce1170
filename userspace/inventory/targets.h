#pragma once
// Normalising the ways sources name a LUN path, so every source produces the
// same TargetLun for the same path: WWPNs as 16 lower-case hex digits without
// 0x or colons, portals as "ip:port", and the udev by-path names os-brick hands
// to Nova decoded back into (transport, target, LUN).
#include <optional>
#include <string>
#include <string_view>

#include "lunwatch.pb.h"

namespace lunwatch::inventory {

// "0x50:0A:09:81:89:1B:8D:C5" -> "500a0981891b8dc5"; nullopt unless the result
// is exactly 16 hex digits.
std::optional<std::string> normalise_wwpn(std::string_view raw);

// "10.0.0.1" -> "10.0.0.1:3260"; "[fe80::1]:3260" kept; "fe80::1" ->
// "[fe80::1]:3260". nullopt for an empty portal.
std::optional<std::string> normalise_portal(std::string_view raw);

// LUN as Cinder writes it (number) or udev does (decimal, or 0x hex for big
// LUNs). nullopt for anything else.
std::optional<uint64_t> parse_lun(std::string_view text);

struct PathTarget {
  v1::Transport transport = v1::TRANSPORT_UNKNOWN;
  v1::TargetLun target;
};

// /dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.2010-10.org.openstack:vol-1-lun-1 -> iSCSI
// /dev/disk/by-path/pci-0000:05:00.2-fc-0x500a0981891b8dc5-lun-1 -> FC
// nullopt for any other path.
std::optional<PathTarget> target_from_by_path(std::string_view device_path);

// /dev/disk/by-id/dm-uuid-mpath-3600a0980... -> "3600a0980..." (multipath's
// WWID as os-brick found it at connect time); "" otherwise.
std::string wwid_from_device_path(std::string_view device_path);

}  // namespace lunwatch::inventory
