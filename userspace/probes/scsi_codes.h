#pragma once
// SCSI status, host byte, opcode and sense decoding (SPC-4, SAM-5, and the
// Linux host byte values of include/scsi/scsi_status.h). Pure functions.
#include <cstdint>
#include <span>
#include <string>

#include "lunwatch.pb.h"

namespace lunwatch::scsi {

std::string status_name(uint8_t status);                 // "CHECK_CONDITION", or "0x.." when unknown
std::string host_byte_name(uint8_t host);                // "DID_NO_CONNECT", ...
std::string opcode_name(uint8_t opcode);                 // "READ_10", ...
std::string sense_key_name(uint8_t key);                 // "ILLEGAL_REQUEST", ...
std::string asc_description(uint8_t asc, uint8_t ascq);  // "LOGICAL UNIT NOT SUPPORTED"

// Decodes fixed (0x70/0x71) or descriptor (0x72/0x73) sense. Returns false
// (and leaves out untouched) when the bytes are not sense data.
bool decode_sense(std::span<const uint8_t> bytes, v1::Sense* out);

// Kernel scsi_cmnd->result: status byte in bits 0-7, host byte in 16-23.
inline uint8_t result_status(uint32_t result) { return result & 0xff; }
inline uint8_t result_host(uint32_t result) { return (result >> 16) & 0xff; }

// Names for lifecycle codes.
std::string iscsi_err_name(int32_t err);        // enum iscsi_err
std::string iscsi_conn_state_name(int32_t st);  // enum iscsi_conn_state
std::string scsi_event_name(int32_t evt);       // enum scsi_device_event
std::string scan_mode_name(int32_t mode);       // enum scsi_scan_mode

}  // namespace lunwatch::scsi
