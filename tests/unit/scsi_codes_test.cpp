#include <gtest/gtest.h>

#include <array>

#include "probes/scsi_codes.h"

using namespace lunwatch;

TEST(Sense, FixedFormatLogicalUnitNotSupported) {
  // What LIO answers after the LUN is unmapped: ILLEGAL REQUEST, ASC 0x25.
  std::array<uint8_t, 18> b{};
  b[0] = 0x70;
  b[2] = 0x05;
  b[7] = 10;
  b[12] = 0x25;
  b[13] = 0x00;
  v1::Sense s;
  ASSERT_TRUE(scsi::decode_sense(b, &s));
  EXPECT_EQ(s.key(), 5u);
  EXPECT_EQ(s.key_name(), "ILLEGAL_REQUEST");
  EXPECT_EQ(s.asc(), 0x25u);
  EXPECT_EQ(s.description(), "LOGICAL UNIT NOT SUPPORTED");
  EXPECT_FALSE(s.deferred());
}

TEST(Sense, DescriptorFormatUnitAttentions) {
  std::array<uint8_t, 8> b{0x72, 0x06, 0x3f, 0x0e, 0, 0, 0, 0};
  v1::Sense s;
  ASSERT_TRUE(scsi::decode_sense(b, &s));
  EXPECT_EQ(s.key_name(), "UNIT_ATTENTION");
  EXPECT_EQ(s.description(), "REPORTED LUNS DATA HAS CHANGED");
  b[3] = 0x03;
  ASSERT_TRUE(scsi::decode_sense(b, &s));
  EXPECT_EQ(s.description(), "INQUIRY DATA HAS CHANGED");
  b[0] = 0x73;
  ASSERT_TRUE(scsi::decode_sense(b, &s));
  EXPECT_TRUE(s.deferred());
}

TEST(Sense, RejectsNonSenseAndShortBuffers) {
  v1::Sense s;
  std::array<uint8_t, 4> zero{};
  EXPECT_FALSE(scsi::decode_sense(zero, &s));
  std::array<uint8_t, 10> short_fixed{0x70, 0, 0x05};
  EXPECT_FALSE(scsi::decode_sense(short_fixed, &s));
  EXPECT_FALSE(scsi::decode_sense(std::span<const uint8_t>(), &s));
  EXPECT_EQ(s.key_name(), "");  // untouched on failure
}

TEST(Sense, UnknownAscIsShownNumerically) {
  EXPECT_EQ(scsi::asc_description(0x99, 0x01), "ASC 0x99 ASCQ 0x01");
  // A wildcard ASCQ entry covers unlisted qualifiers of a known ASC.
  EXPECT_EQ(scsi::asc_description(0x3f, 0x55), "TARGET OPERATING CONDITIONS HAVE CHANGED");
}

TEST(ScsiCodes, ResultBytesAndNames) {
  uint32_t result = (0x01u << 16) | 0x02u;  // DID_NO_CONNECT, CHECK_CONDITION
  EXPECT_EQ(scsi::status_name(scsi::result_status(result)), "CHECK_CONDITION");
  EXPECT_EQ(scsi::host_byte_name(scsi::result_host(result)), "DID_NO_CONNECT");
  EXPECT_EQ(scsi::host_byte_name(0x0e), "DID_TRANSPORT_DISRUPTED");
  EXPECT_EQ(scsi::host_byte_name(0x0f), "DID_TRANSPORT_FAILFAST");
  EXPECT_EQ(scsi::status_name(0x18), "RESERVATION_CONFLICT");
  EXPECT_EQ(scsi::status_name(0x7e), "0x7e");
  EXPECT_EQ(scsi::opcode_name(0x28), "READ_10");
  EXPECT_EQ(scsi::opcode_name(0x2a), "WRITE_10");
  EXPECT_EQ(scsi::opcode_name(0xa0), "REPORT_LUNS");
  EXPECT_EQ(scsi::iscsi_err_name(1011), "ISCSI_ERR_CONN_FAILED");
  EXPECT_EQ(scsi::iscsi_conn_state_name(0), "ISCSI_CONN_UP");
  EXPECT_EQ(scsi::scsi_event_name(6), "SDEV_EVT_LUN_CHANGE_REPORTED");
}
