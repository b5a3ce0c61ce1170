// `lunwatch topology`: a one-shot picture of who uses what. Reads sysfs and
// the attachment sources, verifies every SCSI device through SG_IO, runs the
// correlator on that snapshot, and prints instance -> volume -> dm -> paths
// with cached vs verified WWIDs, and orphans.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>

#include "agent/pipeline.h"
#include "cli/commands.h"
#include "common/devt.h"
#include "common/enum_name.h"
#include "common/log.h"
#include "detect/correlator.h"
#include "inventory/file_source.h"
#include "inventory/libvirt.h"
#include "sinks/json.h"
#include "topology/sgio.h"
#include "topology/sysfs.h"

namespace lunwatch::cli {
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int cmd_topology(const TopologyOptions& o, const agent::AgentOptions& config) {
  // The agent's pipeline and correlator options (allowlist, hostname), except
  // for the orphan grace: a snapshot, so unexplained now is an orphan now.
  auto co = agent::correlator_options(config);
  co.orphan_grace_ns = 0;
  agent::Pipeline pipeline(agent::Pipeline::Options{co, true});
  const detect::Correlator& correlator = pipeline.correlator();
  detect::Output sink;
  auto feed = [&](v1::Event ev) {
    ev.set_unix_ms(now_ms());
    pipeline.feed(std::move(ev), sink);
  };

  if (!o.state_file.empty()) {
    auto b = detect::BindingStore::read_file(o.state_file);
    if (b.ok()) {
      v1::Event ev;
      *ev.mutable_bindings() = b.value();
      feed(ev);
    }
  }
  std::vector<std::unique_ptr<inventory::AttachmentSource>> sources;
  if (o.libvirt) sources.push_back(std::make_unique<inventory::LibvirtSource>(o.libvirt_dir));
  for (const auto& f : o.attachment_files) sources.push_back(std::make_unique<inventory::FileSource>(f));
  for (auto& s : sources) {
    s->refresh();
    v1::Event ev;
    *ev.mutable_inventory() = s->snapshot();
    for (auto& a : *ev.mutable_inventory()->mutable_attachments())
      if (a.resolved_dev().empty()) a.set_resolved_dev(block_device_of(a.device_path()));
    feed(ev);
  }
  v1::Event tev;
  *tev.mutable_topology() = topology::read_topology(o.sysfs_root);
  auto topo = tev.topology();
  feed(tev);

  // Fresh identities for every SCSI disk.
  std::map<std::string, topology::VerifyOutcome> verified;
  if (o.verify) {
    topology::IdentityVerifier::Options vo;
    vo.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.verify_timeout_s * 1000));
    topology::IdentityVerifier verifier(vo);
    for (const auto& d : topo.devices())
      if (auto n = parse_devnum(d.dev()); n && !d.name().empty()) verifier.submit(d.name(), *n);
    for (auto& r : verifier.wait_all(vo.timeout + std::chrono::seconds(1))) {
      feed(topology::identity_event(r));
      verified[r.name] = r;
    }
  }
  for (auto& d : *topo.mutable_devices()) {
    auto it = verified.find(d.name());
    if (it == verified.end()) continue;
    if (it->second.ok) {
      *d.mutable_verified() = it->second.identity;
      d.set_verified_at_unix_ms(it->second.at_unix_ms);
    } else {
      d.set_verify_error(it->second.error);
    }
  }

  v1::TopologyReport rep;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  rep.set_hostname(host);
  *rep.mutable_topology() = topo;
  for (const auto& [att, devs] : correlator.attachment_devices()) {
    auto* v = rep.add_attachments();
    *v->mutable_attachment() = att;
    for (const auto& d : devs) v->add_devices(d);
  }
  for (const auto& d : correlator.orphans()) rep.add_orphans(d);
  *rep.mutable_bindings() = correlator.bindings().snapshot();
  for (const auto& a : correlator.active_alerts()) *rep.add_alerts() = a;
  for (const auto& s : sources) *rep.add_sources() = s->snapshot();

  if (o.json) {
    std::cout << sinks::to_json(rep) << "\n";
    return rep.alerts_size() ? 1 : 0;
  }

  std::map<std::string, std::string> name_of;
  for (const auto& d : topo.devices()) name_of[d.dev()] = d.name();
  for (const auto& m : topo.maps()) name_of[m.dev()] = m.dm();
  std::printf("ATTACHMENTS (instance -> volume -> devices)\n");
  std::printf("  %-8s %-20s %-38s %-10s %s\n", "SOURCE", "INSTANCE", "VOLUME", "STATUS", "DEVICES");
  for (const auto& v : rep.attachments()) {
    const auto& a = v.attachment();
    std::string devs;
    for (const auto& d : v.devices()) devs += (devs.empty() ? "" : " ") + (name_of.count(d) ? name_of[d] : d);
    std::string src = enum_suffix(v1::SourceKind_Name(a.source()), 7, a.source());
    std::string st = v1::AttachmentStatus_Name(a.status());
    st = st.rfind("ATTACHMENT_", 0) == 0 ? st.substr(11) : st;
    std::printf("  %-8s %-20s %-38s %-10s %s\n", src.c_str(),
                (a.instance_name().empty() ? a.instance_uuid() : a.instance_name()).c_str(), a.volume_id().c_str(),
                st.c_str(), devs.empty() ? "-" : devs.c_str());
  }
  std::printf("\nMULTIPATH MAPS\n");
  for (const auto& m : topo.maps()) {
    std::string paths;
    for (const auto& p : m.paths()) paths += (paths.empty() ? "" : ",") + p;
    std::printf("  %-6s %-36s wwid %s paths %s\n", m.dm().c_str(), m.name().c_str(), m.wwid().c_str(), paths.c_str());
  }
  std::printf("\nSCSI DEVICES\n");
  std::printf("  %-5s %-10s %-9s %-40s %-4s %-38s %s\n", "DEV", "H:C:T:L", "STATE", "TARGET", "LUN", "CACHED WWID",
              "VERIFIED WWID (SG_IO)");
  for (const auto& d : topo.devices()) {
    std::string target = d.target().iqn().empty() ? d.target().wwpn() : d.target().iqn() + "@" + d.target().portal();
    std::string ver = d.has_verified() ? d.verified().wwid() : ("(" + d.verify_error() + ")");
    bool differs = d.has_verified() && d.verified().wwid() != d.cached().wwid();
    std::printf("  %-5s %-10s %-9s %-40s %-4llu %-38s %s%s\n", d.name().c_str(), d.addr().hctl().c_str(),
                d.state().c_str(), target.c_str(), static_cast<unsigned long long>(d.target().lun()),
                d.cached().wwid().c_str(), ver.c_str(), differs ? "  <-- sysfs cache is stale" : "");
  }
  std::printf("\nORPHANS (no attachment explains them)\n");
  if (rep.orphans().empty()) std::printf("  none%s\n", sources.empty() ? " (no attachment source)" : "");
  for (const auto& d : rep.orphans())
    std::printf("  %s (%s)\n", name_of.count(d) ? name_of[d].c_str() : "?", d.c_str());
  if (rep.alerts_size()) {
    std::printf("\nFINDINGS\n");
    for (const auto& a : rep.alerts())
      std::printf("  %-24s %-9s %s\n", v1::Rule_Name(a.rule()).c_str(),
                  enum_suffix(v1::Severity_Name(a.severity()), 9, a.severity()).c_str(), a.summary().c_str());
  }
  return rep.alerts_size() ? 1 : 0;
}

}  // namespace lunwatch::cli
