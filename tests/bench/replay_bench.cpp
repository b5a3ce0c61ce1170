// Correlator throughput on one core: a generated host of 1,000 instances and
// 4,096 LUNs (each LUN an iSCSI sd device, each instance's volumes under
// libvirt and Cinder), then a stream of new-flow events (instances reading
// their own volumes, a few reading others'). Prints events per second and
// peak RSS, against a baseline measured in the same run: the same stream
// only copied and inspected, without the correlator. Then the idle cost at
// that scale: what the agent's periodic work costs per run (a refresh that
// changes nothing, one that changes a record and re-judges every live flow,
// the attachment table the metrics and the guard read, the guard's policy),
// against one pass over every device's view in the same run.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "detect/correlator.h"
#include "guard/policy.h"

using namespace lunwatch;
using Clock = std::chrono::steady_clock;

namespace {

std::string uuid_of(int i) {
  char b[40];
  std::snprintf(b, sizeof b, "%08x-0000-4000-8000-%012x", i, i);
  return b;
}

long peak_rss_kib() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace

int main(int argc, char** argv) {
  size_t n_events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  const int instances = 1000, luns = 4096;
  std::vector<v1::Event> setup;
  v1::Event cinder_snapshot;
  {
    v1::Event topo;
    auto* t = topo.mutable_topology();
    for (int l = 0; l < luns; ++l) {
      auto* d = t->add_devices();
      d->set_name("sd" + std::to_string(l));
      d->set_dev("65:" + std::to_string(l));
      d->mutable_addr()->set_host(l / 256);
      d->mutable_addr()->set_lun(l % 256);
      d->set_transport(v1::TRANSPORT_ISCSI);
      d->mutable_target()->set_iqn("iqn.bench:t" + std::to_string(l / 256));
      d->mutable_target()->set_lun(l % 256);
      d->set_state("running");
    }
    setup.push_back(topo);
    v1::Event lv, cin;
    auto* ls = lv.mutable_inventory();
    ls->set_kind(v1::SOURCE_LIBVIRT);
    ls->set_last_good_unix_ms(1);
    auto* cs = cin.mutable_inventory();
    cs->set_kind(v1::SOURCE_CINDER);
    cs->set_last_good_unix_ms(1);
    for (int l = 0; l < luns; ++l) {
      int inst = l % instances;
      auto* a = ls->add_attachments();
      a->set_source(v1::SOURCE_LIBVIRT);
      a->set_instance_uuid(uuid_of(inst));
      a->set_instance_name("instance-" + std::to_string(inst));
      a->set_volume_id(uuid_of(100000 + l));
      a->set_status(v1::ATTACHMENT_ATTACHED);
      a->set_resolved_dev("65:" + std::to_string(l));
      auto* c = cs->add_attachments();
      *c = *a;
      c->set_source(v1::SOURCE_CINDER);
      c->clear_resolved_dev();
      auto* tl = c->add_targets();
      tl->set_iqn("iqn.bench:t" + std::to_string(l / 256));
      tl->set_lun(l % 256);
    }
    for (int i = 0; i < instances; ++i) {
      auto* in = ls->add_instances();
      in->set_uuid(uuid_of(i));
      in->set_name("instance-" + std::to_string(i));
    }
    setup.push_back(lv);
    setup.push_back(cin);
    cinder_snapshot = cin;
    for (int l = 0; l < luns; ++l) {
      v1::Event id;
      auto* c = id.mutable_identity();
      c->set_dev("65:" + std::to_string(l));
      c->set_dev_name("sd" + std::to_string(l));
      c->set_ok(true);
      c->mutable_identity()->set_wwid("naa.6001405" + std::to_string(1000000 + l));
      setup.push_back(id);
    }
  }
  // The stream, generated on the fly (so memory is the correlator's): new
  // flows; 1 in 1,000 crosses into another instance's volume.
  auto make = [&](size_t i, uint64_t& rng, v1::Event& e) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    int l = static_cast<int>(rng % luns);
    int inst = l % instances;
    if (i % 1000 == 999) inst = (inst + 1) % instances;
    e.Clear();
    auto* f = e.mutable_flow();
    f->set_pid(10000 + inst);
    f->set_comm("qemu-system-x86");
    f->set_dev("65:" + std::to_string(l));
    f->set_op(v1::OP_READ);
    f->mutable_instance()->set_uuid(uuid_of(inst));
    f->mutable_instance()->set_name("instance-" + std::to_string(inst));
    e.set_seq(i + 1);
    e.set_ts_ns(1'000'000'000ull + i * 1000);
  };

  // Baseline: generate and inspect every event, as any consumer must.
  uint64_t rng = 88172645463325252ull, sink = 0;
  v1::Event e;
  auto b0 = Clock::now();
  for (size_t i = 0; i < n_events; ++i) {
    make(i, rng, e);
    sink += e.flow().pid() + e.flow().dev().size();
  }
  double base_s = std::chrono::duration<double>(Clock::now() - b0).count();

  long rss_before = peak_rss_kib();
  detect::Correlator c;
  detect::Output warm;
  for (const auto& ev : setup) c.on_event(ev, warm);
  setup.clear();
  setup.shrink_to_fit();
  uint64_t alerts = 0;
  rng = 88172645463325252ull;
  auto t0 = Clock::now();
  for (size_t i = 0; i < n_events; ++i) {
    make(i, rng, e);
    detect::Output out;
    c.on_event(e, out);
    alerts += out.alerts.size();
  }
  double corr_s = std::chrono::duration<double>(Clock::now() - t0).count();
  long rss_after = peak_rss_kib();

  // ---- idle cost: the periodic work at this scale, per run
  auto per_run_ms = [](int runs, const std::function<void()>& fn) {
    auto s0 = Clock::now();
    for (int r = 0; r < runs; ++r) fn();
    return std::chrono::duration<double, std::milli>(Clock::now() - s0).count() / runs;
  };
  uint64_t touch = 0;
  double base_ms = per_run_ms(20, [&] {
    for (const auto& d : c.devices()) touch += d.name.size();
  });
  v1::Event same_cinder = cinder_snapshot;
  uint64_t rejudged0 = c.rejudged_total();
  double same_ms = per_run_ms(20, [&] {
    detect::Output o;
    same_cinder.set_ts_ns(same_cinder.ts_ns() + 1'000'000'000ull);
    same_cinder.mutable_inventory()->set_last_attempt_unix_ms(same_cinder.ts_ns() / 1'000'000);
    c.on_event(same_cinder, o);
  });
  uint64_t rejudged_same = c.rejudged_total() - rejudged0;
  int flip = 0;
  double changed_ms = per_run_ms(5, [&] {
    detect::Output o;
    v1::Event ch = cinder_snapshot;
    ch.set_ts_ns(same_cinder.ts_ns() + 1'000'000'000ull * (++flip));
    ch.mutable_inventory()->mutable_attachments(flip)->set_attachment_id("changed-" + std::to_string(flip));
    c.on_event(ch, o);
  });
  uint64_t rejudged_changed = (c.rejudged_total() - rejudged0 - rejudged_same) / 5;
  double table_ms = per_run_ms(20, [&] {
    for (const auto& [att, devs] : c.attachment_devices()) touch += devs.size();
  });
  double policy_ms = per_run_ms(5, [&] { touch += guard::compute_policy(c).devices.size(); });

  double base_eps = static_cast<double>(n_events) / base_s;
  double corr_eps = static_cast<double>(n_events) / corr_s;
  std::printf("replay benchmark: %d instances, %d LUNs, %zu flow events (checksum %llu)\n", instances, luns, n_events,
              static_cast<unsigned long long>(sink % 1000));
  std::printf("%-28s %14s %10s\n", "stage", "events/s", "ratio");
  std::printf("%-28s %14.0f %10.3f\n", "baseline (make + inspect)", base_eps, 1.0);
  std::printf("%-28s %14.0f %10.3f\n", "make + correlator", corr_eps, corr_eps / base_eps);
  std::printf("alerts raised: %llu (distinct cross-instance pairs)\n", static_cast<unsigned long long>(alerts));
  std::printf("peak RSS: %.1f MiB in all (%.1f MiB before the correlator, setup events included)\n", rss_after / 1024.0,
              rss_before / 1024.0);
  std::printf("idle cost per run (%zu live flows; baseline: one pass over every device view, %.3f ms):\n",
              static_cast<size_t>(c.live_flows()), base_ms);
  std::printf("%-44s %10s %10s\n", "periodic work", "ms/run", "ratio");
  std::printf("%-44s %10.3f %10.2f  (%llu flows re-judged)\n", "refresh that changes nothing", same_ms,
              same_ms / base_ms, static_cast<unsigned long long>(rejudged_same));
  std::printf("%-44s %10.3f %10.2f  (%llu flows re-judged per run)\n", "refresh that changes one record", changed_ms,
              changed_ms / base_ms, static_cast<unsigned long long>(rejudged_changed));
  std::printf("%-44s %10.3f %10.2f\n", "attachment table (metrics, guard, every 2 s)", table_ms, table_ms / base_ms);
  std::printf("%-44s %10.3f %10.2f\n", "guard policy (every 2 s, and per verify batch)", policy_ms,
              policy_ms / base_ms);
  std::printf("target: >= 1,000,000 events/s (%s) and < 64 MiB peak RSS (%s)\n", corr_eps >= 1e6 ? "met" : "NOT met",
              rss_after < 64 * 1024 ? "met" : "NOT met");
  return touch == 0xffffffffffffffffull ? 1 : 0;  // keeps the measured loops from being optimised away
}
