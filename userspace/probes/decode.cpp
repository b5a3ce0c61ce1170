#include "probes/decode.h"

#include <cstring>
#include <string>

#include "common/devt.h"
#include "probes/scsi_codes.h"

extern "C" {
#include "lunwatch.h"
}

namespace lunwatch::probes {

static_assert(sizeof(lw_hdr) == 16);
static_assert(sizeof(lw_scsi_addr) == 24);
static_assert(sizeof(lw_flow_event) == 16 + 16 + 16 + 16);
static_assert(sizeof(lw_edge_event) == 16 + 16);
static_assert(sizeof(lw_bind_event) == 16 + 24 + 8 + 24 + LW_NAME_LEN);
static_assert(sizeof(lw_error_event) == 16 + 24 + 12 + 4 + LW_SENSE_LEN + LW_NAME_LEN);
static_assert(sizeof(lw_lifecycle_event) == 16 + 24 + 24 + LW_NAME_LEN);
static_assert(sizeof(lw_flow_key) == 8);
static_assert(sizeof(lw_guard_event) == 16 + 32 + LW_COMM_LEN);
static_assert(sizeof(lw_guard_dev) ==
              32 + 4 * LW_GUARD_MAX_OWNERS + 16 * LW_GUARD_MAX_PATHS + 8 + 8 * LW_GUARD_MAX_OWNER_CGROUPS);
static_assert(sizeof(lw_flow_val) == 64);

namespace {

constexpr uint32_t kWild32 = 0xffffffffU;
constexpr uint64_t kWild64 = ~0ULL;

template <typename T>
T load(std::span<const uint8_t> b) {
  T v;
  std::memcpy(&v, b.data(), sizeof v);
  return v;
}

std::string dev_string(uint32_t kdev) { return to_string(from_kernel_dev(kdev)); }

std::string bounded(const char* s, size_t n) { return std::string(s, strnlen(s, n)); }

v1::Op op_of(uint32_t op) {
  switch (op) {
    case LW_OP_READ: return v1::OP_READ;
    case LW_OP_WRITE: return v1::OP_WRITE;
    case LW_OP_FLUSH: return v1::OP_FLUSH;
    case LW_OP_DISCARD: return v1::OP_DISCARD;
    case LW_OP_SECURE_ERASE: return v1::OP_SECURE_ERASE;
    case LW_OP_WRITE_ZEROES: return v1::OP_WRITE_ZEROES;
  }
  return v1::OP_OTHER;
}

void fill_addr(const lw_scsi_addr& a, v1::ScsiAddress* out) {
  out->set_host(a.host);
  out->set_channel(a.channel);
  out->set_target(a.id);
  out->set_lun(a.lun);
  out->set_hctl(format_hctl(a.host, a.channel, a.id, a.lun));
}

std::string lifecycle_code_name(uint32_t kind, int32_t code) {
  switch (kind) {
    case LW_LC_SCSI_HOST_SCAN: return scsi::scan_mode_name(code);
    case LW_LC_ISCSI_CONN_ERROR: return scsi::iscsi_err_name(code);
    case LW_LC_ISCSI_CONN_LOGIN: return scsi::iscsi_conn_state_name(code);
    case LW_LC_SCSI_DEVICE_EVENT: return scsi::scsi_event_name(code);
    case LW_LC_DM_PATH_FAIL:
    case LW_LC_DM_PATH_REINSTATE: return std::to_string(code) + " valid paths";
  }
  return "";
}

}  // namespace

std::string format_hctl(uint32_t host, uint32_t channel, uint32_t target, uint64_t lun) {
  auto part32 = [](uint32_t v) { return v == kWild32 ? std::string("-") : std::to_string(v); };
  std::string lun_s = (lun == kWild64 || lun == kWild32) ? "-" : std::to_string(lun);
  return part32(host) + ":" + part32(channel) + ":" + part32(target) + ":" + lun_s;
}

Result<v1::Event> decode_event(std::span<const uint8_t> rec) {
  if (rec.size() < sizeof(lw_hdr))
    return make_error(Errc::kTruncated,
                      "record of " + std::to_string(rec.size()) + " bytes is shorter than its header");
  auto hdr = load<lw_hdr>(rec);
  if (hdr.size < sizeof(lw_hdr) || hdr.size > rec.size())
    return make_error(Errc::kParse,
                      "record says " + std::to_string(hdr.size) + " bytes but has " + std::to_string(rec.size()));
  auto body = rec.first(hdr.size);
  auto need = [&](size_t n) -> bool { return body.size() >= n; };
  auto truncated = [&](const char* what, size_t n) {
    return make_error(Errc::kTruncated, std::string(what) + " record of " + std::to_string(body.size()) +
                                            " bytes, need " + std::to_string(n));
  };

  v1::Event ev;
  ev.set_ts_ns(hdr.ts_ns);
  switch (hdr.type) {
    case LW_EV_FLOW_NEW: {
      if (!need(sizeof(lw_flow_event))) return truncated("flow", sizeof(lw_flow_event));
      auto e = load<lw_flow_event>(body);
      auto* f = ev.mutable_flow();
      f->set_pid(e.tgid);
      f->set_tid(e.tid);
      f->set_comm(bounded(e.comm, sizeof e.comm));
      f->set_cgroup_id(e.cgroup_id);
      f->set_dev(dev_string(e.dev));
      f->set_op(op_of(e.op));
      f->set_bytes(e.bytes);
      break;
    }
    case LW_EV_STACK_EDGE: {
      if (!need(sizeof(lw_edge_event))) return truncated("edge", sizeof(lw_edge_event));
      auto e = load<lw_edge_event>(body);
      auto* s = ev.mutable_edge();
      s->set_upper(dev_string(e.upper));
      s->set_lower(dev_string(e.lower));
      s->set_kind(e.kind == LW_EDGE_BIO_REMAP  ? v1::EDGE_BIO_REMAP
                  : e.kind == LW_EDGE_RQ_REMAP ? v1::EDGE_RQ_REMAP
                                               : v1::EDGE_UNKNOWN);
      s->set_pid(e.tgid);
      break;
    }
    case LW_EV_SCSI_BIND: {
      if (!need(sizeof(lw_bind_event))) return truncated("scsi_bind", sizeof(lw_bind_event));
      auto e = load<lw_bind_event>(body);
      auto* b = ev.mutable_scsi_bind();
      b->set_dev(dev_string(e.dev));
      b->set_dev_name(bounded(e.disk_name, sizeof e.disk_name));
      fill_addr(e.addr, b->mutable_addr());
      if (e.prev_valid) fill_addr(e.prev, b->mutable_previous());
      break;
    }
    case LW_EV_SCSI_ERROR: {
      if (!need(sizeof(lw_error_event))) return truncated("scsi_error", sizeof(lw_error_event));
      auto e = load<lw_error_event>(body);
      auto* x = ev.mutable_scsi_error();
      x->set_dev(e.dev ? dev_string(e.dev) : "");
      x->set_dev_name(bounded(e.disk_name, sizeof e.disk_name));
      fill_addr(e.addr, x->mutable_addr());
      x->set_result(e.result);
      x->set_status(scsi::status_name(scsi::result_status(e.result)));
      x->set_host_byte(scsi::host_byte_name(scsi::result_host(e.result)));
      x->set_opcode(e.cdb0);
      x->set_opcode_name(scsi::opcode_name(e.cdb0));
      size_t n = e.sense_len > LW_SENSE_LEN ? LW_SENSE_LEN : e.sense_len;
      if (n) scsi::decode_sense(std::span<const uint8_t>(e.sense, n), x->mutable_sense());
      x->set_suppressed(e.suppressed);
      x->set_pid(e.tgid);
      break;
    }
    case LW_EV_LIFECYCLE: {
      if (!need(sizeof(lw_lifecycle_event))) return truncated("lifecycle", sizeof(lw_lifecycle_event));
      auto e = load<lw_lifecycle_event>(body);
      if (e.kind == 0 || e.kind >= LW_LC_MAX)
        return make_error(Errc::kUnknownType, "unknown lifecycle kind " + std::to_string(e.kind));
      auto* l = ev.mutable_lifecycle();
      l->set_kind(static_cast<v1::LifecycleKind>(e.kind));
      fill_addr(e.addr, l->mutable_addr());
      if (e.dev) l->set_dev(dev_string(e.dev));
      l->set_session(e.session == kWild32 ? -1 : static_cast<int32_t>(e.session));
      l->set_code(e.code);
      l->set_code_name(lifecycle_code_name(e.kind, e.code));
      std::string name = bounded(e.name, sizeof e.name);
      if (e.kind == LW_LC_DM_PATH_FAIL || e.kind == LW_LC_DM_PATH_REINSTATE) {
        if (auto d = parse_devnum(name))
          l->set_path(to_string(*d));
        else
          l->set_path_name(name);
      }
      l->set_pid(e.tgid);
      break;
    }
    case LW_EV_GUARD: {
      if (!need(sizeof(lw_guard_event))) return truncated("guard", sizeof(lw_guard_event));
      auto e = load<lw_guard_event>(body);
      auto* g = ev.mutable_guard();
      g->set_pid(e.tgid);
      g->set_comm(bounded(e.comm, sizeof e.comm));
      g->set_dev(dev_string(e.dev));
      g->set_state(e.state == LW_GUARD_VERIFIED     ? "verified"
                   : e.state == LW_GUARD_UNVERIFIED ? "unverified"
                   : e.state == LW_GUARD_QUARANTINE ? "quarantined"
                                                    : "unknown");
      g->set_mode(e.mode == LW_GUARD_ENFORCE   ? v1::GUARD_ENFORCE
                  : e.mode == LW_GUARD_MONITOR ? v1::GUARD_MONITOR
                                               : v1::GUARD_OFF);
      g->set_denied(e.denied != 0);
      g->set_write((e.mask & 2) != 0);
      break;
    }
    default: return make_error(Errc::kUnknownType, "unknown event type " + std::to_string(hdr.type));
  }
  return ev;
}

}  // namespace lunwatch::probes
