#include "probes/scsi_codes.h"

#include <array>
#include <cstdio>

namespace lunwatch::scsi {
namespace {

std::string hex(unsigned v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", v);
  return buf;
}

struct AscEntry {
  uint8_t asc;
  int16_t ascq;  // -1: any ASCQ
  const char* text;
};

// The additional sense codes an operator of a SAN-attached hypervisor meets.
constexpr AscEntry kAsc[] = {
    {0x00, 0x00, "NO ADDITIONAL SENSE INFORMATION"},
    {0x04, 0x00, "LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE"},
    {0x04, 0x01, "LOGICAL UNIT IS IN PROCESS OF BECOMING READY"},
    {0x04, 0x02, "LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED"},
    {0x04, 0x03, "LOGICAL UNIT NOT READY, MANUAL INTERVENTION REQUIRED"},
    {0x04, 0x0a, "LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION"},
    {0x04, 0x0b, "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE"},
    {0x04, 0x0c, "LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE"},
    {0x05, 0x00, "LOGICAL UNIT DOES NOT RESPOND TO SELECTION"},
    {0x08, 0x00, "LOGICAL UNIT COMMUNICATION FAILURE"},
    {0x0c, 0x00, "WRITE ERROR"},
    {0x11, 0x00, "UNRECOVERED READ ERROR"},
    {0x20, 0x00, "INVALID COMMAND OPERATION CODE"},
    {0x21, 0x00, "LOGICAL BLOCK ADDRESS OUT OF RANGE"},
    {0x24, 0x00, "INVALID FIELD IN CDB"},
    {0x25, 0x00, "LOGICAL UNIT NOT SUPPORTED"},
    {0x26, 0x00, "INVALID FIELD IN PARAMETER LIST"},
    {0x27, 0x00, "WRITE PROTECTED"},
    {0x28, 0x00, "NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED"},
    {0x29, 0x00, "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED"},
    {0x29, 0x01, "POWER ON OCCURRED"},
    {0x29, 0x02, "SCSI BUS RESET OCCURRED"},
    {0x29, 0x03, "BUS DEVICE RESET FUNCTION OCCURRED"},
    {0x29, 0x04, "DEVICE INTERNAL RESET"},
    {0x29, 0x07, "I_T NEXUS LOSS OCCURRED"},
    {0x2a, 0x01, "MODE PARAMETERS CHANGED"},
    {0x2a, 0x06, "ASYMMETRIC ACCESS STATE CHANGED"},
    {0x2a, 0x09, "CAPACITY DATA HAS CHANGED"},
    {0x2a, 0x10, "TIMESTAMP CHANGED"},
    {0x2a, -1, "PARAMETERS CHANGED"},
    {0x2f, 0x00, "COMMANDS CLEARED BY ANOTHER INITIATOR"},
    {0x38, 0x07, "THIN PROVISIONING SOFT THRESHOLD REACHED"},
    {0x3a, 0x00, "MEDIUM NOT PRESENT"},
    {0x3f, 0x01, "MICROCODE HAS BEEN CHANGED"},
    {0x3f, 0x03, "INQUIRY DATA HAS CHANGED"},
    {0x3f, 0x0e, "REPORTED LUNS DATA HAS CHANGED"},
    {0x3f, -1, "TARGET OPERATING CONDITIONS HAVE CHANGED"},
    {0x44, 0x00, "INTERNAL TARGET FAILURE"},
    {0x47, 0x00, "SCSI PARITY ERROR"},
    {0x4b, 0x00, "DATA PHASE ERROR"},
    {0x55, 0x07, "INSUFFICIENT RESOURCES"},
    {0x5d, 0x00, "FAILURE PREDICTION THRESHOLD EXCEEDED"},
    {0x68, 0x00, "LOGICAL UNIT NOT CONFIGURED"},
};

}  // namespace

std::string status_name(uint8_t s) {
  switch (s) {
    case 0x00: return "GOOD";
    case 0x02: return "CHECK_CONDITION";
    case 0x04: return "CONDITION_MET";
    case 0x08: return "BUSY";
    case 0x18: return "RESERVATION_CONFLICT";
    case 0x22: return "COMMAND_TERMINATED";
    case 0x28: return "TASK_SET_FULL";
    case 0x30: return "ACA_ACTIVE";
    case 0x40: return "TASK_ABORTED";
  }
  return hex(s);
}

std::string host_byte_name(uint8_t h) {
  static constexpr std::array<const char*, 0x14> kNames = {"DID_OK",
                                                           "DID_NO_CONNECT",
                                                           "DID_BUS_BUSY",
                                                           "DID_TIME_OUT",
                                                           "DID_BAD_TARGET",
                                                           "DID_ABORT",
                                                           "DID_PARITY",
                                                           "DID_ERROR",
                                                           "DID_RESET",
                                                           "DID_BAD_INTR",
                                                           "DID_PASSTHROUGH",
                                                           "DID_SOFT_ERROR",
                                                           "DID_IMM_RETRY",
                                                           "DID_REQUEUE",
                                                           "DID_TRANSPORT_DISRUPTED",
                                                           "DID_TRANSPORT_FAILFAST",
                                                           "DID_TARGET_FAILURE",
                                                           "DID_NEXUS_FAILURE",
                                                           "DID_ALLOC_FAILURE",
                                                           "DID_MEDIUM_ERROR"};
  if (h < kNames.size()) return kNames[h];
  if (h == 0x14) return "DID_TRANSPORT_MARGINAL";
  return hex(h);
}

std::string opcode_name(uint8_t op) {
  switch (op) {
    case 0x00: return "TEST_UNIT_READY";
    case 0x03: return "REQUEST_SENSE";
    case 0x08: return "READ_6";
    case 0x0a: return "WRITE_6";
    case 0x12: return "INQUIRY";
    case 0x1a: return "MODE_SENSE_6";
    case 0x1b: return "START_STOP_UNIT";
    case 0x25: return "READ_CAPACITY_10";
    case 0x28: return "READ_10";
    case 0x2a: return "WRITE_10";
    case 0x2f: return "VERIFY_10";
    case 0x35: return "SYNCHRONIZE_CACHE_10";
    case 0x41: return "WRITE_SAME_10";
    case 0x42: return "UNMAP";
    case 0x5a: return "MODE_SENSE_10";
    case 0x5e: return "PERSISTENT_RESERVE_IN";
    case 0x5f: return "PERSISTENT_RESERVE_OUT";
    case 0x88: return "READ_16";
    case 0x89: return "COMPARE_AND_WRITE";
    case 0x8a: return "WRITE_16";
    case 0x91: return "SYNCHRONIZE_CACHE_16";
    case 0x93: return "WRITE_SAME_16";
    case 0x9e: return "SERVICE_ACTION_IN_16";
    case 0xa0: return "REPORT_LUNS";
    case 0xa3: return "MAINTENANCE_IN";
    case 0xa8: return "READ_12";
    case 0xaa: return "WRITE_12";
  }
  return hex(op);
}

std::string sense_key_name(uint8_t key) {
  static constexpr std::array<const char*, 16> kNames = {
      "NO_SENSE",       "RECOVERED_ERROR", "NOT_READY",   "MEDIUM_ERROR",    "HARDWARE_ERROR", "ILLEGAL_REQUEST",
      "UNIT_ATTENTION", "DATA_PROTECT",    "BLANK_CHECK", "VENDOR_SPECIFIC", "COPY_ABORTED",   "ABORTED_COMMAND",
      "EQUAL",          "VOLUME_OVERFLOW", "MISCOMPARE",  "COMPLETED"};
  return kNames[key & 0xf];
}

std::string asc_description(uint8_t asc, uint8_t ascq) {
  for (const auto& e : kAsc)
    if (e.asc == asc && (e.ascq == -1 || e.ascq == ascq)) return e.text;
  char buf[40];
  std::snprintf(buf, sizeof buf, "ASC 0x%02x ASCQ 0x%02x", asc, ascq);
  return buf;
}

bool decode_sense(std::span<const uint8_t> b, v1::Sense* out) {
  if (b.empty()) return false;
  uint8_t rc = b[0] & 0x7f;
  uint8_t key = 0, asc = 0, ascq = 0;
  if (rc == 0x70 || rc == 0x71) {
    if (b.size() < 14) return false;
    key = b[2] & 0x0f;
    asc = b[12];
    ascq = b[13];
  } else if (rc == 0x72 || rc == 0x73) {
    if (b.size() < 4) return false;
    key = b[1] & 0x0f;
    asc = b[2];
    ascq = b[3];
  } else {
    return false;
  }
  out->set_response_code(rc);
  out->set_key(key);
  out->set_key_name(sense_key_name(key));
  out->set_asc(asc);
  out->set_ascq(ascq);
  out->set_description(asc_description(asc, ascq));
  out->set_deferred(rc == 0x71 || rc == 0x73);
  return true;
}

std::string iscsi_err_name(int32_t e) {
  // include/scsi/iscsi_if.h, enum iscsi_err (ISCSI_ERR_BASE = 1000).
  static constexpr std::array<const char*, 30> kNames = {"ISCSI_OK",
                                                         "ISCSI_ERR_DATASN",
                                                         "ISCSI_ERR_DATA_OFFSET",
                                                         "ISCSI_ERR_MAX_CMDSN",
                                                         "ISCSI_ERR_EXP_CMDSN",
                                                         "ISCSI_ERR_BAD_OPCODE",
                                                         "ISCSI_ERR_DATALEN",
                                                         "ISCSI_ERR_AHSLEN",
                                                         "ISCSI_ERR_PROTO",
                                                         "ISCSI_ERR_LUN",
                                                         "ISCSI_ERR_BAD_ITT",
                                                         "ISCSI_ERR_CONN_FAILED",
                                                         "ISCSI_ERR_R2TSN",
                                                         "ISCSI_ERR_SESSION_FAILED",
                                                         "ISCSI_ERR_HDR_DGST",
                                                         "ISCSI_ERR_DATA_DGST",
                                                         "ISCSI_ERR_PARAM_NOT_FOUND",
                                                         "ISCSI_ERR_NO_SCSI_CMD",
                                                         "ISCSI_ERR_INVALID_HOST",
                                                         "ISCSI_ERR_XMIT_FAILED",
                                                         "ISCSI_ERR_TCP_CONN_CLOSE",
                                                         "ISCSI_ERR_SCSI_EH_SESSION_RST",
                                                         "ISCSI_ERR_NOP_TIMEDOUT",
                                                         "ISCSI_ERR_NO_IP_ADDR",
                                                         "ISCSI_ERR_NO_CFG",
                                                         "ISCSI_ERR_NO_FREE_TABLE",
                                                         "ISCSI_ERR_NO_AUTH",
                                                         "ISCSI_ERR_INVALID_LOGIN_STATE",
                                                         "ISCSI_ERR_FLOWCONTROL_MISMATCH",
                                                         "?"};
  if (e == 0) return kNames[0];
  int idx = e - 1000;
  if (idx >= 1 && idx < static_cast<int>(kNames.size()) - 1) return kNames[idx];
  return "ISCSI_ERR_" + std::to_string(e);
}

std::string iscsi_conn_state_name(int32_t st) {
  switch (st) {
    case 0: return "ISCSI_CONN_UP";
    case 1: return "ISCSI_CONN_DOWN";
    case 2: return "ISCSI_CONN_FAILED";
    case 3: return "ISCSI_CONN_BOUND";
  }
  return "ISCSI_CONN_STATE_" + std::to_string(st);
}

std::string scsi_event_name(int32_t evt) {
  switch (evt) {
    case 1: return "SDEV_EVT_MEDIA_CHANGE";
    case 2: return "SDEV_EVT_INQUIRY_CHANGE_REPORTED";
    case 3: return "SDEV_EVT_CAPACITY_CHANGE_REPORTED";
    case 4: return "SDEV_EVT_SOFT_THRESHOLD_REACHED_REPORTED";
    case 5: return "SDEV_EVT_MODE_PARAMETER_CHANGE_REPORTED";
    case 6: return "SDEV_EVT_LUN_CHANGE_REPORTED";
    case 7: return "SDEV_EVT_ALUA_STATE_CHANGE_REPORTED";
    case 8: return "SDEV_EVT_POWER_ON_RESET_OCCURRED";
  }
  return "SDEV_EVT_" + std::to_string(evt);
}

std::string scan_mode_name(int32_t mode) {
  switch (mode) {
    case 0: return "SCSI_SCAN_INITIAL";
    case 1: return "SCSI_SCAN_RESCAN";
    case 2: return "SCSI_SCAN_MANUAL";
  }
  return "SCSI_SCAN_" + std::to_string(mode);
}

}  // namespace lunwatch::scsi
