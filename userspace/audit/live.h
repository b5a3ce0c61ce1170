#pragma once
// Live state for the audit: remote SCSI disks (iSCSI, FC), dm-multipath maps
// and iSCSI sessions from a sysfs root, and the block devices libvirt domains
// use (<disk><source dev=..>) from /run/libvirt/qemu/*.xml (live) and
// /etc/libvirt/qemu/*.xml (persistent: a stopped instance keeps its volumes
// connected). Leftovers are what no domain and nothing on the host uses.
#include <map>
#include <set>
#include <string>
#include <vector>

namespace lunwatch::audit {

struct ScsiDisk {
  std::string hctl;  // "3:0:0:1"
  int host = -1;
  unsigned lun = 0;
  std::string block;      // "sdb"
  std::string transport;  // "iscsi", "fc", "local"
  std::string session;    // "session1" (iSCSI)
  std::string target;     // IQN or target WWPN
  std::string portal;     // "10.0.0.5:3260" (iSCSI)
  std::string wwid;       // cached device/wwid (may be stale)
  std::string state;      // device/state
  std::vector<std::string> holders;
};

struct DmMap {
  std::string dm;    // "dm-0"
  std::string name;  // dm/name
  std::string uuid;  // dm/uuid ("mpath-3600..." for multipath)
  std::vector<std::string> slaves;
  std::vector<std::string> holders;
  bool multipath() const { return uuid.rfind("mpath-", 0) == 0; }
};

struct IscsiSession {
  std::string name;  // "session1"
  int host = -1;
  std::string target;
  std::string portal;
};

struct DomainDisk {
  std::string domain;    // domain name
  std::string file;      // XML file
  std::string source;    // <source dev=..>
  std::string resolved;  // "sdb" / "dm-0", "" when it could not be resolved
};

struct LiveState {
  std::string sysfs;
  std::vector<ScsiDisk> disks;
  std::map<std::string, DmMap> maps;  // by dm-N
  std::vector<IscsiSession> sessions;
  std::vector<DomainDisk> domain_disks;
  std::vector<std::string> domain_files;   // XML files read
  std::vector<std::string> domain_errors;  // "<file>: <why>" for files that could not be parsed
  std::vector<std::string> libvirt_dirs;   // directories that exist
  std::set<std::string> host_used;         // block devices mounted or swapped on (from /proc)
};

// Reads everything; never fails (what cannot be read is left out or listed in
// domain_errors).
LiveState scan_live(const std::string& root, const std::string& sysfs_root);

// Block device names (sdX, dm-N) a domain disk source path points at:
// symlinks under the root first, then the path's own shape (/dev/sdX,
// /dev/dm-N, /dev/mapper/NAME, by-id dm-uuid-/dm-name-/scsi-/wwn-, os-brick's
// os-brick+dev+sdX, by-path ip-<portal>-iscsi-<iqn>-lun-<n> and fc-0x<wwpn>-lun-<n>).
std::string resolve_source(const LiveState& s, const std::string& root, const std::string& path);

// Every device below the given ones (slaves of dm maps, recursively), the
// given ones included.
std::set<std::string> closure_down(const LiveState& s, const std::set<std::string>& top);

}  // namespace lunwatch::audit
