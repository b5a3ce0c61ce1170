#pragma once
// The correlator: joins I/O (flows), the device stack, SCSI addresses,
// verified identities and attachment records, and decides who touches whose
// volume. Pure: it consumes v1::Event values in order and returns alerts and
// requests (verify these devices, re-arm those kernel flows); it does no I/O,
// so the same engine runs live, on a recording and on a capture dump.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "detect/bindings.h"
#include "lunwatch.pb.h"
#include "rules.h"

namespace lunwatch::detect {

struct CorrelatorOptions {
  // Host processes allowed to do I/O to volume devices: comm prefixes.
  std::vector<std::string> host_allowlist = {
      "kworker/", "multipathd", "multipath", "systemd-udevd", "(udev-worker)", "udevd",    "udevadm",
      "blkid",    "sg_",        "dmsetup",   "iscsiadm",      "iscsid",        "lunwatch", "privsep-helper",
      "kpartx",   "lvm",        "pvscan",    "vgscan",        "scsi_id",       "dd-verify"};
  // A device no attachment explains is an orphan only after this long (an
  // attach in progress shows the device before the records).
  uint64_t orphan_grace_ns = 60'000'000'000ULL;
  // A libvirt disk with no Cinder record at all is a divergence only after this
  // long (Cinder's list may not have been refreshed since the attach).
  uint64_t divergence_grace_ns = 30'000'000'000ULL;
  // HOST_PROCESS_ACCESS and GUARD_DENIED (alerts on single attempts, with no
  // state to clear) resolve after this long without a repeat; a recurrence
  // then fires again. 0: never.
  uint64_t alert_quiet_ns = 300'000'000'000ULL;
  std::string hostname;
};

struct VerifyRequest {
  std::string name;  // sda
  std::string dev;   // "8:0"
  v1::VerifyReason reason = v1::VERIFY_UNKNOWN;
};

struct Output {
  std::vector<v1::Alert> alerts;      // newly firing, or resolved
  std::vector<VerifyRequest> verify;  // ask these devices' identity through SG_IO
  std::vector<std::string> rearm;     // kernel flows on these devices must report their next I/O
  bool bindings_changed = false;      // persist the binding store
  bool topology_stale = false;        // re-read sysfs (something was added, removed or scanned)
};

// What the correlator believes about one block device (for `topology`, dumps).
struct DeviceView {
  std::string dev;
  std::string name;
  bool is_dm = false;
  std::string map_wwid;  // dm-multipath: from the map uuid
  std::vector<std::string> lowers;
  std::vector<std::string> uppers;
  std::optional<v1::ScsiDevice> scsi;
  std::optional<v1::Identity> verified;
  int64_t verified_unix_ms = 0;
  std::string verify_error;
  // Identity unknown: a check failed, or an error said the LUN may have
  // changed, since the last good verification. Read by identity_of: an
  // unknown path (unless dm has failed it: it carries no I/O) makes its
  // devices' identity incomplete until a check succeeds.
  bool suspect = false;
  bool path_failed = false;  // dm-multipath failed this path (until reinstated)
};

class Correlator {
 public:
  explicit Correlator(CorrelatorOptions options = {});

  void on_event(const v1::Event& ev, Output& out);

  const BindingStore& bindings() const { return bindings_; }
  std::vector<v1::Alert> active_alerts() const;
  std::vector<DeviceView> devices() const;
  // The same without copies (valid until the next event): for periodic work
  // over thousands of devices. nullptr when the device is unknown.
  const DeviceView* device_view(const std::string& dev) const;
  std::vector<const DeviceView*> device_views() const;
  const std::map<v1::SourceKind, v1::SourceSnapshot>& sources() const { return sources_; }
  // Attachments of every source, and which devices each one resolves to.
  // Each record with the devices it explains here; valid until the next event
  // (references into the correlator's state, no copies: called every few seconds).
  struct AttachmentDevices {
    const v1::Attachment& att;
    const std::vector<std::string>& devs;
  };
  std::vector<AttachmentDevices> attachment_devices() const;
  // Devices no attachment explains (after the grace period or not).
  std::vector<std::string> orphans() const;
  uint64_t events_seen() const { return events_; }
  // Live flows judged again because what decides their verdict changed (the
  // idle cost of keeping verdicts current: a refresh that changes nothing adds 0).
  uint64_t rejudged_total() const { return rejudged_; }
  size_t live_flows() const { return live_flows_.size(); }
  // Processes seen doing I/O for each instance (by uuid): the guard's owners.
  const std::map<std::string, std::set<uint32_t>>& instance_pids() const { return instance_pids_; }

  struct DeviceIdentity {
    std::string wwid;
    std::string serial;
    bool complete = false;  // every path verified
    bool mismatch = false;  // paths disagree
    std::vector<std::string> leaves;
    std::vector<std::string> unknown;  // leaves whose identity is unknown (see DeviceView::suspect)
  };
  DeviceIdentity device_identity(const std::string& dev) const { return identity_of(dev); }

 private:
  struct Dev {
    DeviceView v;
    uint64_t first_seen_ns = 0;
    // topology snapshots in a row that listed this device's H:C:T:L but could
    // not read it (mid-scan, mid-rebind): its last good view stands meanwhile
    int unsettled_rounds = 0;
  };
  using Identity = DeviceIdentity;
  struct Owner {
    std::string instance_uuid;
    std::string instance_name;
    std::string volume_id;
    std::string attachment_id;
  };

  // Indexes over the attachments, rebuilt lazily when sources or the device
  // stack change, so judging a flow does not scan every attachment.
  struct Index {
    bool dirty = true;
    using Map = std::unordered_map<std::string, std::vector<const v1::Attachment*>>;
    Map by_dev;     // device -> attachments on it
    Map by_volume;  // volume id -> attachments
    Map by_pair;    // instance|volume -> non-libvirt records
    std::unordered_map<const v1::Attachment*, std::vector<std::string>> devs_of;  // record -> devices (sorted)
  };
  const Index& index() const;
  void invalidate() {
    index_.dirty = true;
    gen_++;
  }

  Dev& dev(const std::string& d);
  Dev* find_dev(const std::string& d);
  Dev* find_name(const std::string& name);
  void link(const std::string& upper, const std::string& lower);
  // The device graph as judging sees it (devices, stacking, SCSI views), to
  // tell a topology refresh that changed something from one that did not.
  std::string graph_content() const;
  std::vector<std::string> leaves(const std::string& d) const;
  std::vector<std::string> uppers_closure(const std::string& d) const;
  Identity identity_of(const std::string& d) const;
  std::vector<const v1::Attachment*> all_attachments() const;
  // The devices a record explains (from the index: a record of sources_).
  const std::vector<std::string>& attachment_devs(const v1::Attachment& a) const;
  // Builds it: SCSI devices by target (iqn or wwpn, and LUN) and this host's
  // instances, so the index is built in one pass over records and devices.
  struct DevLookup;
  std::vector<std::string> compute_attachment_devs(const v1::Attachment& a, const DevLookup& look) const;
  std::vector<Owner> owners_of(const std::string& wwid, const std::string& serial) const;
  v1::AttachmentStatus cinder_status(const std::string& instance_uuid, const std::string& volume_id, bool* known) const;
  const v1::Instance* instance_by_uuid(const std::string& uuid) const;
  bool is_volume_device(const std::string& d) const;

  void on_flow(const v1::Event& ev, Output& out);
  void evaluate_instance_flow(const v1::Event& ev, Output& out);
  void judge_instance_flow(const v1::Event& ev, Output& out);
  void on_identity(const v1::Event& ev, Output& out);
  void on_topology(const v1::Event& ev, Output& out);
  void on_inventory(const v1::Event& ev, Output& out);
  void on_lifecycle(const v1::Event& ev, Output& out);
  void on_error(const v1::Event& ev, Output& out);
  void on_guard(const v1::Event& ev, Output& out);
  void check_device(const std::string& d, const v1::Event& trigger, Output& out);
  void try_bind_all(Output& out);
  void check_divergence(const v1::Event& trigger, Output& out);
  void check_orphans(const v1::Event& trigger, Output& out);
  void request_verify(const std::string& d, v1::VerifyReason why, Output& out);
  // Re-judges remembered instance flows whose verdict predates what decides
  // it now (attachments, bindings, instances, identities: gen_).
  void rejudge(const v1::Event& decided_by, Output& out);
  // Kernel flows on these devices must report their next I/O: their
  // remembered flows are no evidence for what the device answers now.
  void rearm(const std::string& d, Output& out);
  void forget_flows(const std::function<bool(const v1::Event&)>& pred);

  static std::string alert_id(v1::Rule rule, const std::string& subject);  // "RULE/subject"
  v1::Alert make_alert(v1::Rule rule, const std::string& subject, const v1::Event& trigger) const;
  void describe_device(const std::string& d, v1::Alert& a) const;
  void fire(v1::Alert a, Output& out);
  // The condition of an active alert holds again: counted as fire() would,
  // without building the alert. False when it is not active (fire it).
  bool refire(const std::string& id);
  void hit(const std::string& id);
  void resolve(const std::string& id, const v1::Event& trigger, Output& out);
  void resolve_quiet(const v1::Event& trigger, Output& out);

  CorrelatorOptions opt_;
  std::map<std::string, Dev> devs_;  // by "major:minor"
  std::map<v1::SourceKind, v1::SourceSnapshot> sources_;
  std::map<std::string, std::vector<v1::Event>> pending_flows_;  // waiting for an identity
  std::map<std::string, v1::Alert> active_;                      // by alert id
  std::map<std::string, uint64_t> orphan_since_;
  std::map<std::string, std::set<uint32_t>> instance_pids_;
  std::map<std::string, uint64_t> libvirt_seen_;  // instance/volume -> first seen in libvirt
  std::set<std::string> cinder_listed_;           // instance|volume of libvirt's disks Cinder's list has had
  // What each source said that a verdict can depend on (its records, instances,
  // stale and partial flags, whether it ever answered; not its timestamps): a
  // refresh that says the same again re-judges nothing.
  std::map<v1::SourceKind, std::string> source_content_;
  // The earliest time a verdict held back by a grace (a disk libvirt shows and
  // Cinder's list has not had yet) must be reached again; 0 when none waits.
  uint64_t rejudge_at_ns_ = 0;
  // Verdict memo: a flow of the same instance on the same device, with no
  // state change since (gen_), gets the same verdict; only counts move.
  struct Verdict {
    uint64_t gen = 0;
    std::vector<std::string> alert_ids;
  };
  std::unordered_map<std::string, Verdict> verdicts_;
  uint64_t gen_ = 1;
  std::vector<std::string>* collecting_ = nullptr;  // alert ids fired while judging a flow
  // The last flow event of every instance flow (by instance|dev) whose kernel
  // flow is still in the map as far as we know: what re-judgement judges.
  // Forgotten when the flow is re-armed (the next I/O reports afresh), its
  // device leaves, or its process is no longer the instance's qemu.
  std::unordered_map<std::string, v1::Event> live_flows_;
  const v1::Event* deciding_ = nullptr;          // a re-judgement: the event that decided it
  std::map<std::string, uint64_t> last_hit_ns_;  // active alert id -> its last repeat (now_ns_)
  uint64_t quiet_checked_ns_ = 0;
  std::set<std::string> probing_;  // quiet HOST_PROCESS_ACCESS whose flow was re-armed: one more period
  BindingStore bindings_;
  mutable Index index_;
  uint64_t now_ns_ = 0;
  int64_t now_unix_ms_ = 0;
  uint64_t events_ = 0;
  uint64_t rejudged_ = 0;
};

const char* rule_name(v1::Rule r);
using lunwatch::rule_severity;  // proto/rules.h

}  // namespace lunwatch::detect
