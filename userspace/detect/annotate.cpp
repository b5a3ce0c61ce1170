#include "detect/annotate.h"

#include "common/devt.h"

namespace lunwatch::detect {

std::string Annotator::name_of(const std::string& dev) {
  if (dev.empty()) return "";
  auto d = parse_devnum(dev);
  return d ? names_.name(*d) : "";
}

void Annotator::annotate(v1::Event& ev) {
  switch (ev.body_case()) {
    case v1::Event::kFlow: {
      auto* f = ev.mutable_flow();
      f->set_dev_name(name_of(f->dev()));
      f->set_cgroup(cgroups_.path(f->cgroup_id(), f->pid()));
      break;
    }
    case v1::Event::kEdge: {
      auto* e = ev.mutable_edge();
      e->set_upper_name(name_of(e->upper()));
      e->set_lower_name(name_of(e->lower()));
      break;
    }
    case v1::Event::kScsiBind:  // the kernel names the disk itself; sysfs may lag
      if (ev.scsi_bind().dev_name().empty()) ev.mutable_scsi_bind()->set_dev_name(name_of(ev.scsi_bind().dev()));
      break;
    case v1::Event::kScsiError:
      if (ev.scsi_error().dev_name().empty()) ev.mutable_scsi_error()->set_dev_name(name_of(ev.scsi_error().dev()));
      break;
    case v1::Event::kLifecycle: {
      auto* l = ev.mutable_lifecycle();
      l->set_dev_name(name_of(l->dev()));
      if (!l->path().empty()) l->set_path_name(name_of(l->path()));
      break;
    }
    case v1::Event::kGuard: ev.mutable_guard()->set_dev_name(name_of(ev.guard().dev())); break;
    default: break;
  }
}

}  // namespace lunwatch::detect
