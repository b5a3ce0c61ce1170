#pragma once
// Cinder's view: attachment records from the block-storage API (v3,
// microversion >= 3.27), fetched with a Keystone token, normalised to
// v1::Attachment. Pure parsers first, then the HTTP client and the source.
//
// Secrets (CHAP/auth passwords and usernames, Keystone passwords,
// application-credential secrets, tokens) never reach a log line, an Error or
// an Attachment: the parsers copy only the fields they name, their errors name
// keys and positions but never echo input, and server-provided text is
// redacted before it is shown.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "inventory/http.h"
#include "inventory/secret.h"
#include "inventory/source.h"
#include "lunwatch.pb.h"

namespace lunwatch::inventory {

// ------------------------------------------------------------ pure parsers

struct ConnectionInfo {
  std::string driver_volume_type;  // lower-cased: iscsi, iser, fibre_channel, rbd, ...
  v1::Transport transport = v1::TRANSPORT_UNKNOWN;
  std::vector<v1::TargetLun> targets;  // one per path, deduplicated
  // FC: initiator WWPN -> target WWPNs, all normalised.
  std::map<std::string, std::vector<std::string>> initiator_target_map;
  std::string volume_id;      // data.volume_id, when present
  std::string device_path;    // data.device_path (Nova adds it after connecting)
  std::string expected_wwid;  // data.multipath_id, else data.scsi_wwn
  std::string access_mode;    // rw, ro
  bool encrypted = false;
};

// Accepts Nova's {driver_volume_type, data: {...}} and Cinder's flattened
// shape (data keys beside driver_volume_type), and a JSON string holding
// either. null or {} (a reserved attachment) -> transport UNKNOWN, no targets.
Result<ConnectionInfo> parse_connection_info(const nlohmann::json& connection_info);

// "2017-08-02T13:26:08.000000", with optional "Z" or "+HH:MM" -> Unix seconds.
std::optional<int64_t> parse_cinder_time(std::string_view text);

struct AttachmentsPage {
  std::vector<v1::Attachment> attachments;
  bool has_next = false;
  std::string next_marker;  // from the "next" link's marker (or the last id)
  // Attachments kept with transport UNKNOWN because their connection_info
  // did not parse; each names the attachment id and the key, never a value.
  std::vector<std::string> warnings;
};

// GET /v3/{project}/attachments/detail?all_tenants=1&limit=N[&marker=M].
// Rejects a body that is not JSON, has no "attachments" list, or an
// attachment without id, volume_id or status (a response that lies about its
// shape is not used at all).
Result<AttachmentsPage> parse_attachments_page(std::string_view json);

// One endpoint from a Keystone token's catalog.
struct CatalogEndpoint {
  std::string service_type;  // block-storage, volumev3, ...
  std::string interface;     // public, internal, admin
  std::string region;
  std::string url;
};

struct KeystoneTokenInfo {
  std::string project_id;
  std::vector<std::string> roles;  // token.roles[].name
  bool has_roles = false;          // the body listed roles at all
  std::optional<std::chrono::system_clock::time_point> expires_at;
  std::vector<CatalogEndpoint> catalog;
};

// The body of POST /v3/auth/tokens (the token itself is a header).
Result<KeystoneTokenInfo> parse_keystone_token(std::string_view json);

// block-storage first, then volumev3; the interface must match; region
// must match when given.
Result<std::string> select_volume_endpoint(const std::vector<CatalogEndpoint>& catalog, const std::string& interface,
                                           const std::string& region);

// An endpoint URL -> ".../v3/<project>" base for attachment requests:
// substitutes {project_id}, %(project_id)s, $(project_id)s and $(tenant_id)s;
// appends /v3 and the project id when missing; drops a trailing slash.
std::string cinder_base_url(std::string endpoint, const std::string& project_id);

// ---------------------------------------------------------------- clients

struct KeystoneConfig {
  std::string auth_url;  // https://keystone.example:5000/v3 (a missing /v3 is added)
  // Password auth: user by id, or by name in a domain (default domain name
  // "Default"); project by id, or by name in a domain.
  std::string username;
  std::string user_id;
  std::string user_domain_name;
  std::string user_domain_id;
  Secret password;
  std::string project_name;
  std::string project_id;
  std::string project_domain_name;
  std::string project_domain_id;
  // Application credential (used when the id is set): already scoped.
  std::string application_credential_id;
  Secret application_credential_secret;
  // Catalog lookup; ignored when endpoint_override is set.
  std::string interface = "internal";
  std::string region_name;
  std::string endpoint_override;  // e.g. http://cinder:8776/v3/{project_id}
  HttpOptions http;
};

class KeystoneAuth {
 public:
  KeystoneAuth(KeystoneConfig config, std::shared_ptr<HttpClient> http);
  // The current token, authenticating when there is none or it expires
  // within a minute.
  Result<const Secret*> token();
  // Forget the token (the API said 401).
  void invalidate() { token_ = Secret(); }
  // The Cinder base URL for the current token (token() first).
  const std::string& volume_base_url() const { return base_url_; }
  uint64_t authentications() const { return authentications_; }
  // The token sees every project's attachments (all_tenants=1 honoured):
  // false when its roles are listed and none is "admin" (a non-admin gets
  // HTTP 200 with its own project's attachments only; Zed says no more).
  bool sees_all_projects() const { return sees_all_; }
  const std::vector<std::string>& roles() const { return roles_; }
  std::string describe() const { return url_for_display(config_.auth_url); }
  // Scrubs every credential this object holds from text.
  std::string redact_text(std::string text) const;

 private:
  Result<void> authenticate();
  std::string request_body() const;

  KeystoneConfig config_;
  std::shared_ptr<HttpClient> http_;
  Secret token_;
  std::optional<std::chrono::system_clock::time_point> expires_at_;
  std::string base_url_;
  uint64_t authentications_ = 0;
  bool sees_all_ = true;
  std::vector<std::string> roles_;
};

struct CinderOptions {
  std::string microversion = "3.27";  // OpenStack-API-Version: volume <this>
  uint32_t page_limit = 500;
  uint32_t max_pages = 200;  // more is an error, not a silent truncation
  bool all_tenants = true;   // needs an admin (or reader-with-all-tenants) role
};

class CinderClient {
 public:
  CinderClient(KeystoneConfig keystone, CinderOptions options = {});
  // Every attachment, following "next" links (our own base URL plus the
  // link's marker: a link never takes our token to another host). One 401
  // per call re-authenticates and retries that page.
  Result<std::vector<v1::Attachment>> list_attachments();
  std::string describe() const;  // the endpoint override, else the Keystone URL: no credentials
  const KeystoneAuth& auth() const { return auth_; }
  uint64_t requests() const { return requests_; }
  bool all_tenants() const { return options_.all_tenants; }

 private:
  Result<HttpResponse> get(const std::string& url, bool& reauthed);

  std::shared_ptr<HttpClient> http_;
  KeystoneAuth auth_;
  CinderOptions options_;
  std::string override_;
  uint64_t requests_ = 0;
};

struct CinderSourceOptions {
  std::chrono::milliseconds backoff_initial{5000};
  std::chrono::milliseconds backoff_max{300000};
  // Tests replace the clock to step through back-off.
  std::function<std::chrono::steady_clock::time_point()> clock = [] { return std::chrono::steady_clock::now(); };
};

// Keeps the last good attachment list on any failure (HTTP error, timeout,
// refused connection, garbage or lying body), marks the snapshot stale and
// backs off exponentially: refresh() during back-off does nothing.
class CinderSource : public AttachmentSource {
 public:
  explicit CinderSource(std::unique_ptr<CinderClient> client, CinderSourceOptions options = {});
  std::string name() const override { return name_; }
  v1::SourceKind kind() const override { return v1::SOURCE_CINDER; }
  void refresh() override;
  const v1::SourceSnapshot& snapshot() const override { return snapshot_; }

  bool backing_off() const;
  std::chrono::milliseconds current_backoff() const { return backoff_; }
  uint32_t consecutive_failures() const { return failures_; }
  bool partial() const { return snapshot_.partial(); }
  const CinderClient& client() const { return *client_; }

 private:
  std::unique_ptr<CinderClient> client_;
  CinderSourceOptions options_;
  std::string name_;
  v1::SourceSnapshot snapshot_;
  uint32_t failures_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_attempt_{};
};

}  // namespace lunwatch::inventory
