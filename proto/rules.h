#pragma once
// How serious each rule is: part of the alert's shape, so it lives beside the
// proto and every stage (the correlator, the metrics sink) reads it from here.
#include "lunwatch.pb.h"

namespace lunwatch {

inline v1::Severity rule_severity(v1::Rule r) {
  switch (r) {
    case v1::CROSS_INSTANCE_ACCESS:
    case v1::IDENTITY_CHANGED: return v1::SEVERITY_CRITICAL;
    case v1::STALE_ATTACHMENT_IO:
    case v1::MULTIPATH_WWID_MISMATCH:
    case v1::GUARD_DENIED: return v1::SEVERITY_HIGH;
    case v1::ORPHAN_DEVICE:
    case v1::HOST_PROCESS_ACCESS:
    case v1::ATTACHMENT_DIVERGENCE: return v1::SEVERITY_WARNING;
    default: return v1::SEVERITY_INFO;
  }
}

}  // namespace lunwatch
