// KeystoneAuth, CinderClient and CinderSource against a local HTTP server
// that plays Keystone and Cinder: paging, failures of every kind, 401 and
// re-authentication, back-off, and no secret in any output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>

#include "inventory/cinder.h"
#include "inventory_http_server.h"

using namespace lunwatch;
using namespace lunwatch::inventory;
using lunwatch::testing::HttpReply;
using lunwatch::testing::HttpRequest;
using lunwatch::testing::LocalHttpServer;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPassword = "S3cr3t-Keystone-pw-9c1";
constexpr const char* kAppSecret = "AppCred-Secret-d41d8c";
constexpr const char* kChap = "CHAP-SECRET-pa55w0rd-7f3a";
constexpr const char* kProject = "aa11bb22cc33dd44ee55ff6677889900";

std::string query_value(const std::string& query, const std::string& key) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv.compare(0, key.size() + 1, key + "=") == 0) return kv.substr(key.size() + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

// Keystone + Cinder in one. Knobs are set by the test thread and read by the
// server thread, under mu.
struct FakeCloud {
  std::mutex mu;
  std::string base;  // the server's own URL, for the catalog
  int tokens_issued = 0;
  std::set<std::string> valid_tokens;
  std::vector<json> attachments;
  // knobs
  int reject_tokens = 0;  // answer 401 to this many Cinder requests (and drop their token)
  int cinder_status = 200;
  std::string cinder_body;  // served instead of a page when not empty
  std::chrono::milliseconds cinder_delay{0};
  bool catalog_has_volume = true;
  json roles = nullptr;  // token.roles when set
  std::vector<json> auth_bodies;

  explicit FakeCloud(int n) {
    for (int i = 0; i < n; ++i) {
      char id[64];
      std::snprintf(id, sizeof id, "a%07d-0000-4000-8000-000000000000", i);
      attachments.push_back(json{{"id", id},
                                 {"status", "attached"},
                                 {"instance", "inst-" + std::to_string(i)},
                                 {"volume_id", "vol-" + std::to_string(i)},
                                 {"attached_at", "2023-05-10T12:00:05.000000"},
                                 {"detached_at", nullptr},
                                 {"attach_mode", "rw"},
                                 {"connection_info",
                                  {{"driver_volume_type", "iscsi"},
                                   {"target_iqn", "iqn.2010-10.org.openstack:vol-" + std::to_string(i)},
                                   {"target_portal", "192.0.2.10:3260"},
                                   {"target_lun", i},
                                   {"auth_method", "CHAP"},
                                   {"auth_username", "chap-user"},
                                   {"auth_password", kChap}}}});
    }
  }

  HttpReply handle(const HttpRequest& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (r.method == "POST" && r.path == "/v3/auth/tokens") return keystone(r);
    if (r.method == "GET" && r.path == "/v3/" + std::string(kProject) + "/attachments/detail") return cinder(r);
    return HttpReply{404, {}, R"({"itemNotFound": {"message": "no such path", "code": 404}})"};
  }

  HttpReply keystone(const HttpRequest& r) {
    json body = json::parse(r.body, nullptr, false);
    auth_bodies.push_back(body);
    const json& id = body["auth"]["identity"];
    bool ok = false;
    std::string given;
    if (id["methods"] == json::array({"password"})) {
      given = id["password"]["user"].value("password", "");
      ok = given == kPassword;
    } else if (id["methods"] == json::array({"application_credential"})) {
      given = id["application_credential"].value("secret", "");
      ok = given == kAppSecret;
    }
    if (!ok) {
      // A careless (or hostile) server echoing the credential back.
      return HttpReply{
          401,
          {},
          json{{"error", {{"code", 401}, {"title", "Unauthorized"}, {"message", "bad credential '" + given + "'"}}}}
              .dump()};
    }
    std::string token = "tok-" + std::to_string(++tokens_issued) + "-c0ffee";
    valid_tokens.insert(token);
    json catalog = json::array();
    catalog.push_back(
        {{"type", "identity"},
         {"endpoints", {{{"interface", "internal"}, {"region_id", "RegionOne"}, {"url", base + "/v3"}}}}});
    if (catalog_has_volume) {
      catalog.push_back(
          {{"type", "volumev3"},
           {"endpoints",
            {{{"interface", "public"}, {"region_id", "RegionOne"}, {"url", "http://public.invalid:1/v3/x"}},
             {{"interface", "internal"}, {"region_id", "RegionOne"}, {"url", base + "/v3/" + kProject}}}}});
    }
    json reply = {{"token",
                   {{"methods", {"password"}},
                    {"expires_at", "2099-01-01T00:00:00.000000Z"},
                    {"project", {{"id", kProject}, {"name", "admin"}}},
                    {"catalog", catalog}}}};
    if (!roles.is_null()) reply["token"]["roles"] = roles;
    return HttpReply{201, {{"X-Subject-Token", token}}, reply.dump()};
  }

  HttpReply cinder(const HttpRequest& r) {
    std::string token = r.header("x-auth-token");
    if (!valid_tokens.count(token)) return HttpReply{401, {}, R"({"error": {"message": "unknown token"}})"};
    if (reject_tokens > 0) {
      --reject_tokens;
      valid_tokens.erase(token);
      return HttpReply{401, {}, R"({"error": {"message": "The request you have made requires authentication."}})"};
    }
    HttpReply reply;
    reply.delay = cinder_delay;
    reply.status = cinder_status;
    if (!cinder_body.empty() || cinder_status != 200) {
      reply.body = cinder_body;
      return reply;
    }
    size_t limit = std::stoul(query_value(r.query, "limit"));
    std::string marker = query_value(r.query, "marker");
    size_t start = 0;
    if (!marker.empty()) {
      while (start < attachments.size() && attachments[start]["id"] != marker) ++start;
      ++start;
    }
    json page = {{"attachments", json::array()}};
    for (size_t i = start; i < attachments.size() && i < start + limit; ++i)
      page["attachments"].push_back(attachments[i]);
    if (start + limit < attachments.size()) {
      // The link names another host: the client must take only the marker.
      page["attachments_links"] = {{{"rel", "next"},
                                    {"href", "http://elsewhere.invalid:1/v3/" + std::string(kProject) +
                                                 "/attachments/detail?all_tenants=1&limit=" + std::to_string(limit) +
                                                 "&marker=" + page["attachments"].back()["id"].get<std::string>()}}};
    }
    reply.body = page.dump();
    return reply;
  }
};

struct Rig {
  FakeCloud cloud;
  LocalHttpServer server;
  std::shared_ptr<std::chrono::steady_clock::time_point> now =
      std::make_shared<std::chrono::steady_clock::time_point>(std::chrono::steady_clock::time_point{} + 1h);

  explicit Rig(int n) : cloud(n), server([this](const HttpRequest& r) { return cloud.handle(r); }) {
    std::lock_guard<std::mutex> lock(cloud.mu);
    cloud.base = server.url();
  }

  KeystoneConfig keystone() const {
    KeystoneConfig k;
    k.auth_url = server.url() + "/v3";
    k.username = "lunwatch";
    k.user_domain_name = "Default";
    k.password = Secret(kPassword);
    k.project_name = "admin";
    k.project_domain_name = "Default";
    k.interface = "internal";
    k.region_name = "RegionOne";
    k.http.connect_timeout = 1000ms;
    k.http.total_timeout = 3000ms;
    return k;
  }

  std::unique_ptr<CinderSource> source(KeystoneConfig k, CinderOptions o = {}) {
    CinderSourceOptions so;
    so.backoff_initial = 1000ms;
    so.backoff_max = 4000ms;
    auto clock = now;
    so.clock = [clock] { return *clock; };
    return std::make_unique<CinderSource>(std::make_unique<CinderClient>(std::move(k), o), so);
  }

  template <typename F>
  void with_cloud(F f) {
    std::lock_guard<std::mutex> lock(cloud.mu);
    f(cloud);
  }
};

CinderOptions small_pages(uint32_t limit) {
  CinderOptions o;
  o.page_limit = limit;
  return o;
}

void expect_clean(const std::string& text) {
  for (const char* s : {kPassword, kAppSecret, kChap, "chap-user", "tok-1-c0ffee", "tok-2-c0ffee"}) {
    EXPECT_THAT(text, Not(HasSubstr(s)));
  }
}

std::string everything(const v1::SourceSnapshot& s) { return s.SerializeAsString() + s.DebugString(); }

}  // namespace

TEST(CinderClient, PagesThroughThreePagesWithOneToken) {
  Rig rig(5);
  auto src = rig.source(rig.keystone(), small_pages(2));
  ::testing::internal::CaptureStderr();
  src->refresh();
  std::string logs = ::testing::internal::GetCapturedStderr();

  const auto& s = src->snapshot();
  ASSERT_FALSE(s.stale()) << s.last_error();
  EXPECT_EQ(s.kind(), v1::SOURCE_CINDER);
  EXPECT_EQ(s.errors_total(), 0u);
  ASSERT_EQ(s.attachments_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(s.attachments(i).volume_id(), "vol-" + std::to_string(i));
    EXPECT_EQ(s.attachments(i).transport(), v1::TRANSPORT_ISCSI);
    EXPECT_EQ(s.attachments(i).targets(0).lun(), static_cast<uint64_t>(i));
  }
  EXPECT_GT(s.last_good_unix_ms(), 0);
  EXPECT_THAT(s.name(), HasSubstr(rig.server.url()));

  auto reqs = rig.server.requests();
  ASSERT_EQ(reqs.size(), 4u);  // 1 token + 3 pages
  EXPECT_EQ(reqs[0].method, "POST");
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(reqs[i].header("openstack-api-version"), "volume 3.27");
    EXPECT_EQ(reqs[i].header("x-auth-token"), "tok-1-c0ffee");
    EXPECT_EQ(query_value(reqs[i].query, "all_tenants"), "1");
    EXPECT_EQ(query_value(reqs[i].query, "limit"), "2");
  }
  EXPECT_EQ(query_value(reqs[1].query, "marker"), "");
  EXPECT_EQ(query_value(reqs[2].query, "marker"), "a0000001-0000-4000-8000-000000000000");
  EXPECT_EQ(query_value(reqs[3].query, "marker"), "a0000003-0000-4000-8000-000000000000");

  rig.with_cloud([](FakeCloud& c) {
    ASSERT_EQ(c.auth_bodies.size(), 1u);
    const json& a = c.auth_bodies[0]["auth"];
    EXPECT_EQ(a["identity"]["password"]["user"]["name"], "lunwatch");
    EXPECT_EQ(a["identity"]["password"]["user"]["domain"]["name"], "Default");
    EXPECT_EQ(a["scope"]["project"]["name"], "admin");
    EXPECT_EQ(a["scope"]["project"]["domain"]["name"], "Default");
  });

  // The token is reused on the next refresh.
  src->refresh();
  EXPECT_EQ(src->client().auth().authentications(), 1u);
  EXPECT_EQ(rig.server.request_count(), 7u);
  expect_clean(everything(s) + logs);
}

TEST(CinderSource, ServerErrorKeepsLastGoodAndBacksOff) {
  Rig rig(3);
  auto src = rig.source(rig.keystone());
  src->refresh();
  ASSERT_EQ(src->snapshot().attachments_size(), 3);
  int64_t good_at = src->snapshot().last_good_unix_ms();

  rig.with_cloud([](FakeCloud& c) {
    c.cinder_status = 500;
    c.cinder_body = R"({"computeFault": {"message": "The server has either erred or is incapable.", "code": 500}})";
  });
  ::testing::internal::CaptureStderr();
  src->refresh();
  std::string logs = ::testing::internal::GetCapturedStderr();
  const auto& s = src->snapshot();
  EXPECT_TRUE(s.stale());
  EXPECT_EQ(s.errors_total(), 1u);
  EXPECT_THAT(s.last_error(), HasSubstr("HTTP 500"));
  EXPECT_THAT(s.last_error(), HasSubstr("erred"));
  EXPECT_EQ(s.attachments_size(), 3);
  EXPECT_EQ(s.last_good_unix_ms(), good_at);
  EXPECT_EQ(std::count(logs.begin(), logs.end(), '\n'), 1) << logs;
  EXPECT_EQ(src->current_backoff(), 1000ms);

  // Backing off: refresh() does not touch the network.
  size_t before = rig.server.request_count();
  src->refresh();
  src->refresh();
  EXPECT_EQ(rig.server.request_count(), before);
  EXPECT_EQ(s.errors_total(), 1u);

  *rig.now += 1001ms;
  src->refresh();
  EXPECT_EQ(rig.server.request_count(), before + 1);
  EXPECT_EQ(s.errors_total(), 2u);
  EXPECT_EQ(src->current_backoff(), 2000ms);
  *rig.now += 2001ms;
  src->refresh();
  EXPECT_EQ(src->current_backoff(), 4000ms);
  *rig.now += 4001ms;
  src->refresh();
  EXPECT_EQ(src->current_backoff(), 4000ms) << "capped at backoff_max";
  EXPECT_EQ(src->consecutive_failures(), 4u);

  rig.with_cloud([](FakeCloud& c) {
    c.cinder_status = 200;
    c.cinder_body.clear();
  });
  *rig.now += 4001ms;
  src->refresh();
  EXPECT_FALSE(s.stale());
  EXPECT_EQ(s.last_error(), "");
  EXPECT_EQ(src->consecutive_failures(), 0u);
  EXPECT_EQ(s.errors_total(), 4u);
  EXPECT_GT(s.last_good_unix_ms(), 0);
}

TEST(CinderSource, TimeoutKeepsLastGood) {
  Rig rig(2);
  KeystoneConfig k = rig.keystone();
  k.http.total_timeout = 300ms;
  auto src = rig.source(k);
  src->refresh();
  ASSERT_EQ(src->snapshot().attachments_size(), 2);

  rig.with_cloud([](FakeCloud& c) { c.cinder_delay = 10s; });
  auto t0 = std::chrono::steady_clock::now();
  src->refresh();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 5s) << "the client's timeout, not the server's delay, must end the call";
  EXPECT_TRUE(src->snapshot().stale());
  EXPECT_EQ(src->snapshot().errors_total(), 1u);
  EXPECT_THAT(src->snapshot().last_error(), HasSubstr("timed out"));
  EXPECT_EQ(src->snapshot().attachments_size(), 2);
  // The server notices the client left and finishes that exchange.
  EXPECT_TRUE(rig.server.wait_for_answered(rig.server.request_count(), 5s));
}

TEST(CinderSource, GarbageAndLyingBodiesKeepLastGood) {
  Rig rig(2);
  auto src = rig.source(rig.keystone());
  src->refresh();
  ASSERT_EQ(src->snapshot().attachments_size(), 2);
  struct Case {
    std::string body;
    const char* says;
  };
  std::vector<Case> cases = {
      {"<html><body>502 Bad Gateway</body></html>", "not JSON"},
      {std::string(R"({"attachments": [{"id": "x", "status": "attached", "connection_info": {"auth_password": ")") +
           kChap + "\"}}]}",
       "no volume_id"},
      {R"({"volumes": []})", "no \"attachments\" list"},
      {std::string(R"({"attachments": [{"id": "x", "volume_id": ")") + kChap, "not JSON"},
  };
  uint64_t errors = 0;
  for (const auto& c : cases) {
    rig.with_cloud([&](FakeCloud& cloud) { cloud.cinder_body = c.body; });
    *rig.now += 1h;  // past any back-off
    ::testing::internal::CaptureStderr();
    src->refresh();
    std::string logs = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(src->snapshot().errors_total(), ++errors);
    EXPECT_TRUE(src->snapshot().stale());
    EXPECT_THAT(src->snapshot().last_error(), HasSubstr(c.says));
    EXPECT_EQ(src->snapshot().attachments_size(), 2);
    expect_clean(everything(src->snapshot()) + logs);
  }
}

TEST(CinderSource, ReauthenticatesOnceOn401) {
  Rig rig(3);
  auto src = rig.source(rig.keystone());
  src->refresh();
  ASSERT_FALSE(src->snapshot().stale());
  EXPECT_EQ(src->client().auth().authentications(), 1u);

  rig.with_cloud([](FakeCloud& c) { c.reject_tokens = 1; });  // token revoked
  src->refresh();
  EXPECT_FALSE(src->snapshot().stale()) << src->snapshot().last_error();
  EXPECT_EQ(src->client().auth().authentications(), 2u);
  EXPECT_EQ(src->snapshot().attachments_size(), 3);
  auto reqs = rig.server.requests();
  EXPECT_EQ(reqs.back().header("x-auth-token"), "tok-2-c0ffee");

  // Two 401s in one refresh: re-authenticate once, then give up.
  rig.with_cloud([](FakeCloud& c) { c.reject_tokens = 2; });
  src->refresh();
  EXPECT_TRUE(src->snapshot().stale());
  EXPECT_THAT(src->snapshot().last_error(), HasSubstr("HTTP 401"));
  EXPECT_EQ(src->client().auth().authentications(), 3u);
  EXPECT_EQ(src->snapshot().attachments_size(), 3);
}

TEST(CinderSource, ConnectionRefused) {
  uint16_t port;
  {
    LocalHttpServer gone([](const HttpRequest&) { return HttpReply{}; });
    port = gone.port();
  }
  KeystoneConfig k;
  k.auth_url = "http://127.0.0.1:" + std::to_string(port) + "/v3";
  k.username = "lunwatch";
  k.password = Secret(kPassword);
  k.project_name = "admin";
  k.http.connect_timeout = 500ms;
  k.http.total_timeout = 1000ms;
  CinderSourceOptions so;
  CinderSource src(std::make_unique<CinderClient>(std::move(k)), so);
  ::testing::internal::CaptureStderr();
  src.refresh();
  std::string logs = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_THAT(src.snapshot().last_error(), HasSubstr("keystone"));
  EXPECT_TRUE(src.backing_off());
  expect_clean(everything(src.snapshot()) + logs);
}

TEST(Keystone, WrongPasswordEchoedByServerNeverLeaks) {
  Rig rig(1);
  KeystoneConfig k = rig.keystone();
  const std::string wrong = "Wr0ng-Pa55-e1f-secret";
  k.password = Secret(wrong);
  auto src = rig.source(k);
  ::testing::internal::CaptureStderr();
  src->refresh();
  std::string logs = ::testing::internal::GetCapturedStderr();
  const auto& s = src->snapshot();
  EXPECT_TRUE(s.stale());
  EXPECT_THAT(s.last_error(), HasSubstr("HTTP 401"));
  EXPECT_THAT(s.last_error(), HasSubstr("bad credential '***'"));
  EXPECT_THAT(s.last_error() + logs + everything(s), Not(HasSubstr(wrong)));
  EXPECT_THAT(logs, HasSubstr("HTTP 401"));
}

TEST(Keystone, ApplicationCredential) {
  Rig rig(2);
  KeystoneConfig k;
  k.auth_url = rig.server.url();  // "/v3" is added
  k.application_credential_id = "appcred-1";
  k.application_credential_secret = Secret(kAppSecret);
  k.region_name = "RegionOne";
  k.http.total_timeout = 3000ms;
  auto src = rig.source(k);
  ::testing::internal::CaptureStderr();
  src->refresh();
  std::string logs = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(src->snapshot().stale()) << src->snapshot().last_error();
  EXPECT_EQ(src->snapshot().attachments_size(), 2);
  rig.with_cloud([](FakeCloud& c) {
    ASSERT_EQ(c.auth_bodies.size(), 1u);
    const json& a = c.auth_bodies[0]["auth"];
    EXPECT_EQ(a["identity"]["methods"], json::array({"application_credential"}));
    EXPECT_EQ(a["identity"]["application_credential"]["id"], "appcred-1");
    EXPECT_FALSE(a.contains("scope")) << "application credentials carry their own scope";
  });
  expect_clean(everything(src->snapshot()) + logs);
}

TEST(Keystone, EndpointOverrideSkipsTheCatalog) {
  Rig rig(1);
  rig.with_cloud([](FakeCloud& c) { c.catalog_has_volume = false; });
  KeystoneConfig k = rig.keystone();
  auto without = rig.source(k);
  without->refresh();
  EXPECT_TRUE(without->snapshot().stale());
  EXPECT_THAT(without->snapshot().last_error(), HasSubstr("no block-storage/volumev3 endpoint"));

  k.endpoint_override = rig.server.url() + "/v3/{project_id}";
  auto with = rig.source(k);
  with->refresh();
  EXPECT_FALSE(with->snapshot().stale()) << with->snapshot().last_error();
  EXPECT_EQ(with->snapshot().attachments_size(), 1);
}

TEST(CinderClient, PageCapAndBodyCap) {
  Rig rig(5);
  CinderOptions o = small_pages(2);
  o.max_pages = 2;
  auto capped = rig.source(rig.keystone(), o);
  capped->refresh();
  EXPECT_TRUE(capped->snapshot().stale());
  EXPECT_THAT(capped->snapshot().last_error(), HasSubstr("more than 2 pages"));
  EXPECT_EQ(capped->snapshot().attachments_size(), 0) << "a partial list is never published";

  KeystoneConfig k = rig.keystone();
  k.http.max_body_bytes = 1024;  // the token body fits, a page of 5 does not
  auto small = rig.source(k);
  small->refresh();
  EXPECT_TRUE(small->snapshot().stale());
  EXPECT_THAT(small->snapshot().last_error(), HasSubstr("larger than 1024 bytes"));
}

// Zed: a non-admin asking for all_tenants=1 gets HTTP 200 with its own
// project's attachments only. The token's roles say so: the list is marked
// partial (absence in it proves nothing), an admin's is not.
TEST(CinderSource, ATokenWithoutAdminMarksTheListPartial) {
  Rig rig(3);
  rig.with_cloud([](FakeCloud& c) {
    c.roles = json::array({{{"id", "r1"}, {"name", "member"}}, {{"id", "r2"}, {"name", "reader"}}});
  });
  auto src = rig.source(rig.keystone());
  src->refresh();
  ASSERT_FALSE(src->snapshot().stale()) << src->snapshot().last_error();
  EXPECT_EQ(src->snapshot().attachments_size(), 3);
  EXPECT_TRUE(src->snapshot().partial());
  EXPECT_FALSE(src->client().auth().sees_all_projects());

  Rig admin(2);
  admin.with_cloud([](FakeCloud& c) {
    c.roles = json::array({{{"id", "r0"}, {"name", "admin"}}, {{"id", "r1"}, {"name", "member"}}});
  });
  auto src2 = admin.source(admin.keystone());
  src2->refresh();
  ASSERT_FALSE(src2->snapshot().stale());
  EXPECT_FALSE(src2->snapshot().partial());
}

TEST(KeystoneToken, RolesAreParsedFromTheTokenBody) {
  auto t = parse_keystone_token(
      R"({"token": {"project": {"id": "p"}, "roles": [{"id": "1", "name": "member"}, {"id": "2", "name": "admin"}]}})");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(t.value().has_roles);
  EXPECT_EQ(t.value().roles, (std::vector<std::string>{"member", "admin"}));
  auto none = parse_keystone_token(R"({"token": {"project": {"id": "p"}}})");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().has_roles);
}
