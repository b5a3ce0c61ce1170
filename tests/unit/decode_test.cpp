// Decoding ring-buffer records from canned bytes laid out by bpf/lunwatch.h.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "probes/consumer.h"
#include "probes/decode.h"
#include "sinks/json.h"

extern "C" {
#include "lunwatch.h"
}

using namespace lunwatch;

namespace {

template <typename T>
std::vector<uint8_t> bytes_of(const T& v) {
  std::vector<uint8_t> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

template <typename T>
T with_hdr(uint32_t type) {
  T v{};
  v.hdr.ts_ns = 123456789;
  v.hdr.type = type;
  v.hdr.size = sizeof(T);
  return v;
}

}  // namespace

TEST(Decode, FlowEvent) {
  auto e = with_hdr<lw_flow_event>(LW_EV_FLOW_NEW);
  e.tgid = 4242;
  e.tid = 4243;
  e.cgroup_id = 77;
  e.bytes = 4096;
  e.dev = (7u << 20) | 3u;
  e.op = LW_OP_WRITE;
  std::strcpy(e.comm, "qemu-system-x86");
  auto ev = probes::decode_event(bytes_of(e));
  ASSERT_TRUE(ev.ok()) << ev.error().message;
  ASSERT_TRUE(ev->has_flow());
  EXPECT_EQ(ev->ts_ns(), 123456789u);
  EXPECT_EQ(ev->flow().pid(), 4242u);
  EXPECT_EQ(ev->flow().tid(), 4243u);
  EXPECT_EQ(ev->flow().comm(), "qemu-system-x86");
  EXPECT_EQ(ev->flow().dev(), "7:3");
  EXPECT_EQ(ev->flow().op(), v1::OP_WRITE);
  EXPECT_EQ(ev->flow().bytes(), 4096u);
  EXPECT_EQ(ev->flow().cgroup_id(), 77u);
}

TEST(Decode, CommWithoutTerminatorIsBounded) {
  auto e = with_hdr<lw_flow_event>(LW_EV_FLOW_NEW);
  std::memset(e.comm, 'a', sizeof e.comm);
  auto ev = probes::decode_event(bytes_of(e));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->flow().comm(), std::string(16, 'a'));
}

TEST(Decode, EdgeBindAndErrorEvents) {
  auto edge = with_hdr<lw_edge_event>(LW_EV_STACK_EDGE);
  edge.upper = (253u << 20) | 0;
  edge.lower = (8u << 20) | 16;
  edge.kind = LW_EDGE_RQ_REMAP;
  auto ev = probes::decode_event(bytes_of(edge));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->edge().upper(), "253:0");
  EXPECT_EQ(ev->edge().lower(), "8:16");
  EXPECT_EQ(ev->edge().kind(), v1::EDGE_RQ_REMAP);

  auto bind = with_hdr<lw_bind_event>(LW_EV_SCSI_BIND);
  bind.dev = (8u << 20) | 0;
  bind.addr = {1, 2, 0, 0, 0};  // lun 1, host 2
  std::strcpy(bind.disk_name, "sda");
  ev = probes::decode_event(bytes_of(bind));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->scsi_bind().dev_name(), "sda");
  EXPECT_EQ(ev->scsi_bind().addr().hctl(), "2:0:0:1");
  EXPECT_FALSE(ev->scsi_bind().has_previous());
  bind.prev_valid = 1;
  bind.prev = {5, 2, 0, 0, 0};
  ev = probes::decode_event(bytes_of(bind));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->scsi_bind().previous().hctl(), "2:0:0:5");

  auto err = with_hdr<lw_error_event>(LW_EV_SCSI_ERROR);
  err.dev = (8u << 20) | 0;
  err.addr = {1, 0, 0, 0, 0};
  err.result = 0x02;  // CHECK_CONDITION, DID_OK
  err.cdb0 = 0x28;
  err.sense_len = LW_SENSE_LEN;
  err.sense[0] = 0x70;
  err.sense[2] = 0x05;
  err.sense[12] = 0x25;
  err.suppressed = 3;
  ev = probes::decode_event(bytes_of(err));
  ASSERT_TRUE(ev.ok());
  const auto& x = ev->scsi_error();
  EXPECT_EQ(x.status(), "CHECK_CONDITION");
  EXPECT_EQ(x.host_byte(), "DID_OK");
  EXPECT_EQ(x.opcode_name(), "READ_10");
  EXPECT_EQ(x.sense().key_name(), "ILLEGAL_REQUEST");
  EXPECT_EQ(x.sense().asc(), 0x25u);
  EXPECT_EQ(x.sense().description(), "LOGICAL UNIT NOT SUPPORTED");
  EXPECT_EQ(x.suppressed(), 3u);
  EXPECT_EQ(x.addr().hctl(), "0:0:0:1");
}

TEST(Decode, LifecycleEvents) {
  auto lc = with_hdr<lw_lifecycle_event>(LW_EV_LIFECYCLE);
  lc.kind = LW_LC_SCSI_HOST_SCAN;
  lc.addr = {1, 3, 0xffffffffu, 0xffffffffu, 0};  // echo "- - 1" > host3/scan
  lc.session = 0xffffffffu;
  lc.code = 2;
  auto ev = probes::decode_event(bytes_of(lc));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->lifecycle().kind(), v1::LC_SCSI_HOST_SCAN);
  EXPECT_EQ(ev->lifecycle().addr().hctl(), "3:-:-:1");
  EXPECT_EQ(ev->lifecycle().session(), -1);
  EXPECT_EQ(ev->lifecycle().code_name(), "SCSI_SCAN_MANUAL");

  lc.kind = LW_LC_DM_PATH_FAIL;
  lc.code = 1;
  std::strcpy(lc.name, "8:16");
  ev = probes::decode_event(bytes_of(lc));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->lifecycle().kind(), v1::LC_DM_PATH_FAIL);
  EXPECT_EQ(ev->lifecycle().path(), "8:16");
  EXPECT_EQ(ev->lifecycle().code_name(), "1 valid paths");

  lc.kind = LW_LC_ISCSI_CONN_ERROR;
  lc.session = 4;
  lc.code = 1020;
  ev = probes::decode_event(bytes_of(lc));
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->lifecycle().session(), 4);
  EXPECT_EQ(ev->lifecycle().code_name(), "ISCSI_ERR_TCP_CONN_CLOSE");
}

TEST(Decode, RejectsTruncatedAndUnknown) {
  std::vector<uint8_t> tiny(8, 0);
  auto ev = probes::decode_event(tiny);
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, Errc::kTruncated);

  // Header claims a flow but the record stops short of it.
  auto e = with_hdr<lw_flow_event>(LW_EV_FLOW_NEW);
  auto b = bytes_of(e);
  b.resize(40);
  reinterpret_cast<lw_hdr*>(b.data())->size = 40;
  ev = probes::decode_event(b);
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, Errc::kTruncated);

  // Size field larger than the bytes we got.
  b = bytes_of(e);
  reinterpret_cast<lw_hdr*>(b.data())->size = 4096;
  ev = probes::decode_event(b);
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, Errc::kParse);

  auto u = with_hdr<lw_edge_event>(99);
  ev = probes::decode_event(bytes_of(u));
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, Errc::kUnknownType);

  auto lc = with_hdr<lw_lifecycle_event>(LW_EV_LIFECYCLE);
  lc.kind = 200;
  ev = probes::decode_event(bytes_of(lc));
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(ev.error().code, Errc::kUnknownType);
}

TEST(Decode, LongerRecordFromANewerKernelSideIsAccepted) {
  auto e = with_hdr<lw_edge_event>(LW_EV_STACK_EDGE);
  auto b = bytes_of(e);
  b.resize(b.size() + 16, 0xee);
  reinterpret_cast<lw_hdr*>(b.data())->size = static_cast<uint32_t>(b.size());
  EXPECT_TRUE(probes::decode_event(b).ok());
}

TEST(Consumer, CountsErrorsByCauseAndKeepsGoing) {
  probes::ConsumerStats stats;
  std::vector<v1::Event> got;
  probes::EventHandler h = [&](v1::Event&& ev) { got.push_back(std::move(ev)); };
  std::vector<uint8_t> tiny(3, 0);
  probes::consume_record(tiny, stats, h);
  probes::consume_record(tiny, stats, h);
  auto u = with_hdr<lw_edge_event>(42);
  probes::consume_record(bytes_of(u), stats, h);
  auto ok = with_hdr<lw_edge_event>(LW_EV_STACK_EDGE);
  probes::consume_record(bytes_of(ok), stats, h);
  probes::consume_record(bytes_of(ok), stats, h);
  EXPECT_EQ(stats.decode_truncated, 2u);
  EXPECT_EQ(stats.decode_unknown, 1u);
  EXPECT_EQ(stats.events, 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].seq(), 1u);
  EXPECT_EQ(got[1].seq(), 2u);
}

TEST(Json, EventShapeUsesProtoFieldNames) {
  auto e = with_hdr<lw_bind_event>(LW_EV_SCSI_BIND);
  e.dev = (8u << 20);
  e.addr = {1, 0, 0, 0, 0};
  auto ev = probes::decode_event(bytes_of(e));
  ASSERT_TRUE(ev.ok());
  auto json = sinks::to_json(ev.value());
  EXPECT_NE(json.find(R"("scsi_bind":{)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("hctl":"0:0:0:1")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("host":0)"), std::string::npos) << json;  // zeros are printed
  EXPECT_EQ(json.find('\n'), std::string::npos);
}
