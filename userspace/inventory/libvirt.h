#pragma once
// Nova's view on this hypervisor: libvirt domain XML. The live status file
// (/run/libvirt/qemu/<name>.xml: <domstatus state=.. pid=N><domain>..) names the
// qemu pid; the persistent file (/etc/libvirt/qemu/<name>.xml: <domain>) does
// not. Each block disk becomes an Attachment (the path Nova gave qemu, the
// volume id from <serial>); network disks (rbd, native iSCSI) are
// TRANSPORT_OTHER because they are no SCSI LUN on this host.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "inventory/source.h"
#include "lunwatch.pb.h"

namespace lunwatch::inventory {

struct LibvirtDomain {
  v1::Instance instance;  // uuid, name, pid (live XML), display name, owner (Nova metadata)
  std::vector<v1::Attachment> attachments;
  bool live = false;         // parsed from <domstatus>
  std::string state;         // domstatus state attribute ("running", "paused", ...)
  std::string nova_version;  // metadata namespace version: "1.0", "1.1" or ""
};

// Pure. Accepts <domstatus><domain>..</domain></domstatus> and <domain>. Rejects
// malformed XML and a domain without <name> with Errc::kParse.
Result<LibvirtDomain> parse_libvirt_domain(std::string_view xml);

// Scans a directory of domain XML files (default: libvirt's qemu run dir) and
// the <name>.pid files beside them. A file is re-parsed only when its mtime,
// size or inode changed; a malformed file keeps that domain's last good parse
// (counted once per change, snapshot marked stale).
class LibvirtSource : public AttachmentSource {
 public:
  explicit LibvirtSource(std::string dir = "/run/libvirt/qemu");
  std::string name() const override { return "libvirt:" + dir_; }
  v1::SourceKind kind() const override { return v1::SOURCE_LIBVIRT; }
  void refresh() override;
  const v1::SourceSnapshot& snapshot() const override { return snapshot_; }

  // The domains of the last refresh, by domain name.
  const std::map<std::string, LibvirtDomain>& domains() const { return domains_; }
  // How many XML files were parsed since construction (cheap-refresh check).
  uint64_t parses() const { return parses_; }

 private:
  struct Entry {
    FileSignature xml_sig;
    std::optional<FileSignature> pid_sig;
    bool have_good = false;  // a parse of this file ever succeeded
    LibvirtDomain domain;    // last good parse, pid filled from the .pid file
    uint32_t xml_pid = 0;    // pid named by <domstatus>, preferred to the .pid file
    std::string error;       // "" when the current file parsed
  };
  void rebuild();

  std::string dir_;
  std::map<std::string, Entry> entries_;  // by file stem (= domain name for libvirt)
  std::map<std::string, LibvirtDomain> domains_;
  v1::SourceSnapshot snapshot_;
  uint64_t parses_ = 0;
  std::string dir_error_;
};

}  // namespace lunwatch::inventory
