// guard::reconcile, the pure half of the guard's fail-closed reconciliation:
// one test per case the lab scenarios exercise (tests/lab/scenarios).
#include <gtest/gtest.h>

#include "common/devt.h"
#include "guard/reconcile.h"

namespace lunwatch::guard {
namespace {

constexpr uint32_t kMpath = (253u << 20) | 0;  // dm-0 "253:0"
constexpr uint32_t kSda = (8u << 20) | 0;      // "8:0"
constexpr uint32_t kSdb = (8u << 20) | 16;     // "8:16"

lw_guard_path path(uint32_t kdev, uint32_t host) {
  lw_guard_path p{};
  p.dev = kdev;
  p.host = host;
  p.lun = 1;
  return p;
}

DevicePolicy owned_by(uint32_t kdev, std::vector<uint32_t> owners, std::vector<lw_guard_path> paths) {
  DevicePolicy dp;
  dp.kdev = kdev;
  dp.name = "dm-0";
  dp.owners = std::move(owners);
  dp.owner_cgroups = {};
  dp.paths = std::move(paths);
  dp.reason = "bound to instance A";
  return dp;
}

struct Fixture {
  Policy policy;
  std::map<uint32_t, lw_guard_dev> kernel;
  VerifyLedger ledger;
  ReconcileState state;
  std::set<std::string> present = {"253:0", "8:0", "8:16"};
  uint64_t now = 5'000'000'000;

  GuardPlan run() {
    ReconcileInput in;
    in.policy = &policy;
    in.kernel = &kernel;
    in.ledger = &ledger;
    in.present = present;
    in.names = {{"253:0", "dm-0"}, {"8:0", "sda"}, {"8:16", "sdb"}};
    in.now_ns = now;
    return reconcile(in, state);
  }
};

// A device the kernel closed (a LUN scan) whose path answered with the
// owner's identity to a question asked after the close re-opens.
TEST(GuardReconcile, ReopensAfterVerificationAskedAfterTheClose) {
  Fixture f;
  auto dp = owned_by(kMpath, {100}, {path(kSda, 2)});
  f.policy.devices[kMpath] = dp;
  f.policy.held = {kMpath};
  lw_guard_dev closed = to_kernel(dp, 7);
  closed.state = LW_GUARD_UNVERIFIED;
  closed.closed_ns = 1000;
  closed.close_reason = LW_CLOSE_SCAN;
  f.kernel[kMpath] = closed;
  f.state.generation = 7;

  // Verified before the close: not good enough; the path is asked again.
  f.ledger.verified_since["8:0"] = 999;
  auto plan = f.run();
  EXPECT_TRUE(plan.puts.empty());
  ASSERT_EQ(plan.verify.size(), 1u);
  EXPECT_EQ(plan.verify[0].name, "sda");
  EXPECT_EQ(plan.verify[0].dev, "8:0");
  EXPECT_EQ(plan.verify[0].reason, v1::VERIFY_ERROR_RECOVERY);

  // Failed after the close: answered, but nothing verified; still closed, not asked again.
  f.ledger.failed_since["8:0"] = 1500;
  plan = f.run();
  EXPECT_TRUE(plan.puts.empty());
  EXPECT_TRUE(plan.verify.empty());

  // Verified after the close: re-opened with the policy's owners.
  f.ledger.failed_since.erase("8:0");
  f.ledger.verified_since["8:0"] = 2000;
  plan = f.run();
  ASSERT_EQ(plan.puts.size(), 1u);
  EXPECT_EQ(plan.puts[0].kind, GuardPut::kReopen);
  EXPECT_EQ(plan.puts[0].entry.state, static_cast<uint32_t>(LW_GUARD_VERIFIED));
  EXPECT_EQ(plan.puts[0].entry.closed_ns, 0u);
  EXPECT_EQ(plan.puts[0].entry.generation, 8u);
  EXPECT_EQ(plan.puts[0].entry.owners[0], 100u);
  EXPECT_NE(plan.puts[0].message.find("re-opened"), std::string::npos);
  EXPECT_NE(plan.puts[0].message.find("LUN scan"), std::string::npos);
  EXPECT_TRUE(plan.verify.empty());
}

// Failover: only the reinstated path (bit 1 of closed_paths) must re-verify;
// the other path keeps its identity even though it never answered since.
TEST(GuardReconcile, FailoverReopensAfterOnlyTheClosedPaths) {
  Fixture f;
  auto dp = owned_by(kMpath, {100}, {path(kSda, 2), path(kSdb, 3)});
  f.policy.devices[kMpath] = dp;
  f.policy.held = {kMpath};
  lw_guard_dev closed = to_kernel(dp, 3);
  closed.state = LW_GUARD_UNVERIFIED;
  closed.closed_ns = 1000;
  closed.close_reason = LW_CLOSE_PATH_REINSTATE;
  closed.closed_paths = 1u << 1;  // sdb
  f.kernel[kMpath] = closed;

  auto plan = f.run();  // nothing answered: only sdb is asked
  EXPECT_TRUE(plan.puts.empty());
  ASSERT_EQ(plan.verify.size(), 1u);
  EXPECT_EQ(plan.verify[0].dev, "8:16");

  f.ledger.verified_since["8:16"] = 1200;  // sdb answered; sda never did
  plan = f.run();
  ASSERT_EQ(plan.puts.size(), 1u);
  EXPECT_EQ(plan.puts[0].kind, GuardPut::kReopen);

  // Every bit set (a close named the device itself): sda must answer too.
  f.kernel[kMpath].closed_paths = ~0U;
  plan = f.run();
  EXPECT_TRUE(plan.puts.empty());
  ASSERT_EQ(plan.verify.size(), 1u);
  EXPECT_EQ(plan.verify[0].dev, "8:0");
}

// Paths answering with different identities: closed now, and only once.
TEST(GuardReconcile, MismatchClosesAVerifiedDevice) {
  Fixture f;
  auto dp = owned_by(kMpath, {}, {path(kSda, 2)});
  dp.state = LW_GUARD_UNVERIFIED;
  dp.reason = "paths answer with different identities";
  f.policy.devices[kMpath] = dp;
  f.kernel[kMpath] = to_kernel(owned_by(kMpath, {100}, {path(kSda, 2)}), 1);
  auto plan = f.run();
  ASSERT_EQ(plan.puts.size(), 1u);
  EXPECT_EQ(plan.puts[0].kind, GuardPut::kClose);
  EXPECT_EQ(plan.puts[0].entry.state, static_cast<uint32_t>(LW_GUARD_UNVERIFIED));
  EXPECT_EQ(plan.puts[0].entry.closed_ns, f.now);
  EXPECT_EQ(plan.puts[0].entry.n_owners, 0u);

  f.kernel[kMpath] = plan.puts[0].entry;  // written: nothing more to do
  EXPECT_TRUE(f.run().puts.empty());
}

// The binding's owner changed (attachment moved): the entry is rewritten;
// an unchanged entry is not.
TEST(GuardReconcile, OwnerChangeRewritesUnchangedDoesNot) {
  Fixture f;
  f.policy.devices[kMpath] = owned_by(kMpath, {200}, {path(kSda, 2)});
  f.policy.held = {kMpath};
  f.kernel[kMpath] = to_kernel(owned_by(kMpath, {100}, {path(kSda, 2)}), 4);
  f.state.generation = 4;
  auto plan = f.run();
  ASSERT_EQ(plan.puts.size(), 1u);
  EXPECT_EQ(plan.puts[0].kind, GuardPut::kUpdate);
  EXPECT_EQ(plan.puts[0].entry.owners[0], 200u);
  EXPECT_EQ(plan.puts[0].entry.generation, 5u);

  f.kernel[kMpath] = plan.puts[0].entry;
  plan = f.run();
  EXPECT_TRUE(plan.empty());
  EXPECT_EQ(f.state.generation, 5u);

  f.policy.devices[kMpath].owner_cgroups = {77};  // a scope appeared: rewritten
  EXPECT_EQ(f.run().puts.size(), 1u);
}

// A failed detach: the device is still there but no instance holds it; its
// entry keeps its paths, owners cleared. Once sysfs drops it, it is removed.
TEST(GuardReconcile, RevokesOnFailedDetachRemovesWhenGone) {
  Fixture f;
  f.kernel[kMpath] = to_kernel(owned_by(kMpath, {100}, {path(kSda, 2)}), 2);
  f.state.generation = 2;
  f.state.ever_held = {kMpath};
  auto plan = f.run();
  EXPECT_TRUE(plan.puts.empty());
  ASSERT_EQ(plan.revokes.size(), 1u);
  EXPECT_EQ(plan.revokes[0].kdev, kMpath);
  EXPECT_EQ(plan.revokes[0].entry.n_owners, 0u);
  EXPECT_EQ(plan.revokes[0].entry.n_paths, 1u);
  EXPECT_EQ(plan.revokes[0].entry.generation, 3u);
  EXPECT_NE(plan.revokes[0].message.find("dm-0 revoked"), std::string::npos);

  f.kernel[kMpath] = plan.revokes[0].entry;  // revoked already: left so
  EXPECT_TRUE(f.run().empty());

  f.present.erase("253:0");  // sysfs no longer shows it
  plan = f.run();
  ASSERT_EQ(plan.removes.size(), 1u);
  EXPECT_EQ(plan.removes[0], kMpath);
  EXPECT_TRUE(f.state.ever_held.empty());
}

// Held once but never armed (identity never verified while held), now held
// by nobody: revoked all the same, with a fresh entry.
TEST(GuardReconcile, RevokesADeviceHeldButNeverArmed) {
  Fixture f;
  f.policy.held = {kSdb};
  EXPECT_TRUE(f.run().empty());  // held, not judged yet: the kernel keeps what it has
  f.policy.held.clear();
  auto plan = f.run();
  ASSERT_EQ(plan.revokes.size(), 1u);
  EXPECT_EQ(plan.revokes[0].kdev, kSdb);
  EXPECT_EQ(plan.revokes[0].entry.state, static_cast<uint32_t>(LW_GUARD_VERIFIED));
  EXPECT_EQ(plan.revokes[0].entry.n_paths, 0u);
}

// Quarantine is the operator's call: not re-opened, updated, revoked or removed.
TEST(GuardReconcile, QuarantineIsLeftAlone) {
  Fixture f;
  f.policy.devices[kMpath] = owned_by(kMpath, {200}, {path(kSda, 2)});
  lw_guard_dev q = to_kernel(owned_by(kMpath, {100}, {path(kSda, 2)}), 9);
  q.state = LW_GUARD_QUARANTINE;
  f.kernel[kMpath] = q;
  EXPECT_TRUE(f.run().empty());
  f.policy.devices.clear();  // not held any more
  EXPECT_TRUE(f.run().empty());
  f.present.clear();  // nor shown by sysfs
  EXPECT_TRUE(f.run().empty());
  f.policy.devices[kMpath] = owned_by(kMpath, {}, {path(kSda, 2)});
  f.policy.devices[kMpath].state = LW_GUARD_UNVERIFIED;  // nor closed over it
  EXPECT_TRUE(f.run().empty());
}

// `lunwatch guard arm` writes generation 0: the agent never touches it.
TEST(GuardReconcile, GuardArmEntriesAreLeftAlone) {
  Fixture f;
  f.kernel[kSda] = to_kernel(owned_by(kSda, {4242}, {}), 0);
  EXPECT_TRUE(f.run().empty());
  f.present.clear();
  EXPECT_TRUE(f.run().empty());
}

TEST(GuardReconcile, ProcsAndScopesComeFromThePolicy) {
  Fixture f;
  f.policy.instance_tgids = {100, 200};
  f.policy.instance_cgroups = {77};
  auto plan = f.run();
  EXPECT_EQ(plan.procs, (std::set<uint32_t>{100, 200}));
  EXPECT_EQ(plan.cgroups, (std::set<uint64_t>{77}));
}

}  // namespace
}  // namespace lunwatch::guard
