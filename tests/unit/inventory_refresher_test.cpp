// AsyncRefresher: sources refresh in worker threads, so a slow or hung source
// (a Cinder API that accepts and never answers) never holds the caller, never
// delays another source, and a stop does not wait for its timeout.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "inventory/cinder.h"
#include "inventory/refresher.h"

using namespace lunwatch;
using namespace lunwatch::inventory;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// A source whose refresh() blocks until the test releases it.
class GateSource : public AttachmentSource {
 public:
  struct Gate {
    std::mutex mu;
    std::condition_variable cv;
    bool open = false;
    int entered = 0;
    void release() {
      std::lock_guard<std::mutex> l(mu);
      open = true;
      cv.notify_all();
    }
  };
  GateSource(std::string name, v1::SourceKind kind, std::shared_ptr<Gate> gate)
      : name_(std::move(name)), kind_(kind), gate_(std::move(gate)) {
    snap_.set_kind(kind_);
    snap_.set_name(name_);
  }
  std::string name() const override { return name_; }
  v1::SourceKind kind() const override { return kind_; }
  void refresh() override {
    if (gate_) {
      std::unique_lock<std::mutex> l(gate_->mu);
      gate_->entered++;
      gate_->cv.notify_all();
      gate_->cv.wait(l, [&] { return gate_->open; });
    }
    auto* a = snap_.add_attachments();
    a->set_volume_id("vol-" + std::to_string(snap_.attachments_size()));
    a->set_device_path("/dev/disk/by-id/x");
    snap_.set_last_good_unix_ms(now_unix_ms());
  }
  const v1::SourceSnapshot& snapshot() const override { return snap_; }

 private:
  std::string name_;
  v1::SourceKind kind_;
  std::shared_ptr<Gate> gate_;
  v1::SourceSnapshot snap_;
};

template <typename F>
bool eventually(F f, std::chrono::milliseconds limit) {
  auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return f();
}

TEST(AsyncRefresher, SlowSourceNeitherBlocksTheCallerNorDelaysAnotherSource) {
  auto gate = std::make_shared<GateSource::Gate>();
  std::vector<std::unique_ptr<AttachmentSource>> sources;
  sources.push_back(std::make_unique<GateSource>("cinder", v1::SOURCE_CINDER, gate));
  sources.push_back(std::make_unique<GateSource>("libvirt", v1::SOURCE_LIBVIRT, nullptr));
  AsyncRefresher r(std::move(sources));

  auto t0 = Clock::now();
  r.request();
  EXPECT_LT(Clock::now() - t0, 50ms) << "request() waited for a source";
  // The fast source answers while the slow one is still inside refresh().
  std::vector<AsyncRefresher::Update> got;
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& u : r.take()) got.push_back(std::move(u));
        return !got.empty();
      },
      5s));
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].index, 1U);
  EXPECT_EQ(got[0].snapshot.kind(), v1::SOURCE_LIBVIRT);
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> l(gate->mu);
        return gate->entered == 1;
      },
      5s));
  // Still hung: the caller's take() returns at once, with nothing from it.
  t0 = Clock::now();
  EXPECT_TRUE(r.take().empty());
  EXPECT_LT(Clock::now() - t0, 50ms);
  auto st = r.states();
  ASSERT_EQ(st.size(), 2U);
  EXPECT_TRUE(st[0].busy);
  EXPECT_FALSE(st[1].busy);
  // A tick while it runs is skipped and counted; the idle source refreshes again.
  r.request();
  st = r.states();
  EXPECT_EQ(st[0].skipped, 1U);
  EXPECT_EQ(st[1].skipped, 0U);
  EXPECT_FALSE(r.wait_all(100ms)) << "the hung source never answered, wait_all must say so";

  gate->release();
  got.clear();
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& u : r.take()) got.push_back(std::move(u));
        for (const auto& u : got)
          if (u.index == 0) return true;
        return false;
      },
      5s));
  for (const auto& u : got)
    if (u.index == 0) {
      EXPECT_EQ(u.snapshot.kind(), v1::SOURCE_CINDER);
      EXPECT_EQ(u.snapshot.attachments_size(), 1);
      EXPECT_GE(u.took, 0ms);
    }
  EXPECT_TRUE(r.wait_all(1s));
  EXPECT_FALSE(r.states()[0].busy);
}

TEST(AsyncRefresher, HandsOverImmutableCopiesPostProcessedInTheWorker) {
  std::vector<std::unique_ptr<AttachmentSource>> sources;
  sources.push_back(std::make_unique<GateSource>("file", v1::SOURCE_FILE, nullptr));
  auto caller = std::this_thread::get_id();
  std::atomic<bool> in_caller{false};
  AsyncRefresher r(std::move(sources), [&](v1::SourceSnapshot& s) {
    if (std::this_thread::get_id() == caller) in_caller = true;
    for (auto& a : *s.mutable_attachments()) a.set_resolved_dev("8:0");
  });
  r.request();
  ASSERT_TRUE(r.wait_all(5s));
  auto first = r.take();
  ASSERT_EQ(first.size(), 1U);
  r.request();
  std::vector<AsyncRefresher::Update> second;
  ASSERT_TRUE(eventually(
      [&] {
        for (auto& u : r.take()) second.push_back(std::move(u));
        return !second.empty();
      },
      5s));
  // The first copy is untouched by the second refresh.
  EXPECT_EQ(first[0].snapshot.attachments_size(), 1);
  EXPECT_EQ(second[0].snapshot.attachments_size(), 2);
  EXPECT_EQ(second[0].snapshot.attachments(1).resolved_dev(), "8:0");
  EXPECT_FALSE(in_caller);
}

// A TCP listener that completes connections (the kernel's backlog) and never
// answers: Keystone/Cinder hung behind a load balancer.
struct SilentListener {
  int fd = -1;
  int port = 0;
  SilentListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // a listener that failed to come up would make the test prove nothing
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0) ADD_FAILURE() << "listen";
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) ADD_FAILURE() << "getsockname";
    port = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd); }
};

TEST(AsyncRefresher, HungCinderKeepsTheCallerFreeAndStopDoesNotWaitForItsTimeout) {
  SilentListener hung;
  ASSERT_GT(hung.port, 0);
  KeystoneConfig k;
  k.auth_url = "http://127.0.0.1:" + std::to_string(hung.port) + "/v3";
  k.username = "lunwatch";
  k.password = Secret("pw-never-sent-anywhere");
  k.project_name = "admin";
  k.http.total_timeout = 30000ms;  // the shipped default
  std::vector<std::unique_ptr<AttachmentSource>> sources;
  sources.push_back(std::make_unique<CinderSource>(std::make_unique<CinderClient>(k)));
  sources.push_back(std::make_unique<GateSource>("libvirt", v1::SOURCE_LIBVIRT, nullptr));
  auto r = std::make_unique<AsyncRefresher>(std::move(sources));
  auto t0 = Clock::now();
  r->request();
  EXPECT_LT(Clock::now() - t0, 50ms);
  EXPECT_FALSE(r->wait_all(1500ms)) << "a listener that never answers cannot have answered";
  auto got = r->take();
  ASSERT_EQ(got.size(), 1U) << "libvirt's refresh is not held by Cinder's";
  EXPECT_EQ(got[0].index, 1U);
  auto st = r->states();
  EXPECT_TRUE(st[0].busy);
  EXPECT_GE(st[0].busy_for, 1000ms);
  // Stopping aborts the request: far less than its 30 s timeout.
  t0 = Clock::now();
  r.reset();
  auto took = Clock::now() - t0;
  EXPECT_LT(took, 5s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
}

}  // namespace

namespace {
v1::Attachment rec(const std::string& uuid, const std::string& vol) {
  v1::Attachment a;
  a.set_instance_uuid(uuid);
  a.set_volume_id(vol);
  a.set_status(v1::ATTACHMENT_ATTACHED);
  return a;
}
v1::SourceSnapshot snap(v1::SourceKind kind, const std::vector<v1::Attachment>& atts) {
  v1::SourceSnapshot s;
  s.set_kind(kind);
  for (const auto& a : atts) *s.add_attachments() = a;
  return s;
}
}  // namespace

TEST(SuspectList, AListLackingEveryLocalAttachmentIsSuspectOneDeleteIsNot) {
  auto libvirt = snap(v1::SOURCE_LIBVIRT, {rec("local-1", "v1"), rec("local-2", "v2")});
  auto before = snap(v1::SOURCE_CINDER, {rec("local-1", "v1"), rec("local-2", "v2"), rec("remote", "v9")});
  // Only other hosts' records left while both local domains still hold volumes.
  auto after = snap(v1::SOURCE_CINDER, {rec("remote", "v9")});
  EXPECT_TRUE(lacks_every_local_attachment(before, after, libvirt));
  // One of them deleted (the CVE's first step): applied.
  auto one_gone = snap(v1::SOURCE_CINDER, {rec("local-2", "v2"), rec("remote", "v9")});
  EXPECT_FALSE(lacks_every_local_attachment(before, one_gone, libvirt));
  // The only local attachment deleted: a real delete, not suspect.
  auto single = snap(v1::SOURCE_CINDER, {rec("local-1", "v1"), rec("remote", "v9")});
  auto libvirt1 = snap(v1::SOURCE_LIBVIRT, {rec("local-1", "v1")});
  EXPECT_FALSE(lacks_every_local_attachment(single, after, libvirt1));
  // No local domain holds a volume: nothing to lack.
  EXPECT_FALSE(lacks_every_local_attachment(before, after, snap(v1::SOURCE_LIBVIRT, {})));
}
