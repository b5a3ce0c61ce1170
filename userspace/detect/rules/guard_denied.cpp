// Rule GUARD_DENIED: the guard refused (or would refuse) I/O.
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

// The guard refused (or would refuse) I/O: no bio was submitted, so this is
// the only sign of the attempt. Judge it like a flow, and say it was refused.
void Correlator::on_guard(const v1::Event& ev, Output& out) {
  const auto& g = ev.guard();
  v1::Event as_flow = ev;
  auto* f = as_flow.mutable_flow();
  f->set_pid(g.pid());
  f->set_tid(g.pid());
  f->set_comm(g.comm());
  f->set_dev(g.dev());
  f->set_dev_name(g.dev_name());
  f->set_op(g.write() ? v1::OP_WRITE : v1::OP_READ);
  *f->mutable_instance() = g.instance();
  size_t before = out.alerts.size();
  if (!g.instance().uuid().empty() || !g.instance().name().empty()) evaluate_instance_flow(as_flow, out);
  for (size_t i = before; i < out.alerts.size(); ++i) {
    out.alerts[i].set_denied(g.denied());
    *out.alerts[i].mutable_trigger() = ev;
    active_[out.alerts[i].id()].set_denied(g.denied());
  }
  const auto& me = g.instance();
  // A device closed by the kernel (a scan, a reinstated path) refuses its own
  // holder until re-verified: expected and brief, counted in the guard's
  // metrics, not an alert. Refusals of a verified or quarantined device are.
  if (g.state() == "unverified") return;
  auto a = make_alert(v1::GUARD_DENIED, label(me) + "/" + g.dev(), ev);
  *a.mutable_instance() = me;
  a.set_pid(g.pid());
  a.set_comm(g.comm());
  a.set_denied(g.denied());
  describe_device(g.dev(), a);
  a.set_summary(std::string(g.denied() ? "guard refused " : "guard would refuse (monitor) ") +
                (g.write() ? "a write" : "a read") + " by " + label(me) + " (pid " + std::to_string(g.pid()) + ", " +
                g.comm() + ") on " + (g.dev_name().empty() ? g.dev() : g.dev_name()) + " (" + g.state() + ")");
  fire(std::move(a), out);
}

}  // namespace lunwatch::detect
