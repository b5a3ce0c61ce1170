#include "inventory/file_source.h"

#include <google/protobuf/util/json_util.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/json_input.h"
#include "common/log.h"
#include "inventory/targets.h"

namespace lunwatch::inventory {
namespace {

using json = nlohmann::json;

template <typename Msg>
Result<Msg> to_message(const json& j, const std::string& where) {
  if (!j.is_object()) return make_error(Errc::kParse, where + " is not an object");
  Msg msg;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(j.dump(), &msg, opts);
  if (!status.ok()) return make_error(Errc::kParse, where + ": " + std::string(status.message()));
  return msg;
}

Result<void> normalise(v1::Attachment& a, const std::string& where) {
  if (a.instance_uuid().empty() && a.instance_name().empty()) {
    return make_error(Errc::kParse, where + ": no owner (instance_uuid or instance_name)");
  }
  if (a.volume_id().empty() && a.device_path().empty() && a.targets().empty() && a.expected_wwid().empty()) {
    return make_error(Errc::kParse,
                      where + ": nothing to match a device on (volume_id, device_path, targets, expected_wwid)");
  }
  for (int i = 0; i < a.targets_size(); ++i) {
    v1::TargetLun* t = a.mutable_targets(i);
    const std::string tw = where + ".targets[" + std::to_string(i) + "]";
    if (!t->wwpn().empty()) {
      auto w = normalise_wwpn(t->wwpn());
      if (!w) return make_error(Errc::kParse, tw + ".wwpn is not a WWPN");
      t->set_wwpn(*w);
    }
    if (!t->portal().empty()) {
      auto p = normalise_portal(t->portal());
      if (!p) return make_error(Errc::kParse, tw + ".portal is not a portal");
      t->set_portal(*p);
    }
    if (t->wwpn().empty() && t->iqn().empty()) return make_error(Errc::kParse, tw + " has neither iqn nor wwpn");
  }
  if (a.source() == v1::SOURCE_UNKNOWN) a.set_source(v1::SOURCE_FILE);
  return {};
}

}  // namespace

Result<FileRecords> parse_attachment_file(std::string_view text) {
  if (text.size() > kMaxInputBytes) return make_error(Errc::kTruncated, "larger than 16 MiB");
  // Never nlohmann's own messages: they quote the input.
  auto parsed = parse_json(text);
  if (!parsed.ok()) return make_error(Errc::kParse, parsed.error().message);
  const json& j = parsed.value();
  const json* atts = nullptr;
  const json* insts = nullptr;
  if (j.is_array()) {
    atts = &j;
  } else if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (k == "attachments") {
        atts = &v;
      } else if (k == "instances") {
        insts = &v;
      } else {
        return make_error(Errc::kParse, "unknown key \"" + k.substr(0, 64) + "\" (expected attachments, instances)");
      }
    }
    if (atts == nullptr) return make_error(Errc::kParse, "no \"attachments\" list");
  } else {
    return make_error(Errc::kParse, "expected a list of attachments or {\"attachments\": [...]}");
  }
  if (!atts->is_array()) return make_error(Errc::kParse, "\"attachments\" is not a list");
  if (insts != nullptr && !insts->is_array()) return make_error(Errc::kParse, "\"instances\" is not a list");

  FileRecords out;
  for (size_t i = 0; i < atts->size(); ++i) {
    const std::string where = "attachments[" + std::to_string(i) + "]";
    auto a = to_message<v1::Attachment>((*atts)[i], where);
    if (!a) return a.error();
    auto ok = normalise(*a, where);
    if (!ok) return ok.error();
    out.attachments.push_back(std::move(a.value()));
  }
  if (insts != nullptr) {
    for (size_t i = 0; i < insts->size(); ++i) {
      const std::string where = "instances[" + std::to_string(i) + "]";
      auto inst = to_message<v1::Instance>((*insts)[i], where);
      if (!inst) return inst.error();
      if (inst->uuid().empty() && inst->name().empty()) {
        return make_error(Errc::kParse, where + ": neither uuid nor name");
      }
      if (inst->resolved_from().empty()) inst->set_resolved_from("file");
      out.instances.push_back(std::move(inst.value()));
    }
  }
  return out;
}

FileSource::FileSource(std::string path) : path_(std::move(path)) {
  snapshot_.set_kind(v1::SOURCE_FILE);
  snapshot_.set_name(name());
}

void FileSource::fail(const std::string& message) {
  if (message != path_error_) log::warn(message + " (keeping the last good records)");
  path_error_ = message;
  snapshot_.set_errors_total(snapshot_.errors_total() + 1);
  snapshot_.set_last_error(message);
  snapshot_.set_stale(true);
}

void FileSource::refresh() {
  namespace fs = std::filesystem;
  snapshot_.set_last_attempt_unix_ms(now_unix_ms());
  std::error_code ec;
  std::vector<std::string> files;
  auto st = fs::status(path_, ec);
  if (st.type() == fs::file_type::not_found) {
    fail("file source: " + path_ + ": does not exist");
    return;
  }
  if (ec) {
    fail("file source: " + path_ + ": " + ec.message());
    return;
  }
  if (fs::is_directory(st)) {
    fs::directory_iterator it(path_, ec);
    for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      if (it->path().extension() == ".json" && it->is_regular_file(fec)) files.push_back(it->path().string());
    }
    if (ec) {
      fail("file source: cannot list " + path_ + ": " + ec.message());
      return;
    }
  } else {
    files.push_back(path_);
  }
  path_error_.clear();

  bool changed = false;
  std::map<std::string, Entry> next;
  for (const auto& f : files) {
    auto sig = file_signature(f);
    if (!sig) continue;
    Entry e;
    bool known = false;
    if (auto old = entries_.find(f); old != entries_.end()) {
      e = std::move(old->second);
      known = true;
    }
    if (!known || !(e.sig == *sig)) {
      changed = true;
      ++parses_;
      e.sig = *sig;
      auto text = read_file_capped(f);
      if (!text && text.error().code == Errc::kNotFound) continue;  // removed while we looked
      Result<FileRecords> parsed = text ? parse_attachment_file(*text) : Result<FileRecords>(text.error());
      if (parsed) {
        e.records = std::move(parsed.value());
        e.have_good = true;
        e.error.clear();
      } else {
        // read_file_capped's messages already start with the path.
        e.error = text ? f + ": " + parsed.error().message : parsed.error().message;
        snapshot_.set_errors_total(snapshot_.errors_total() + 1);
        log::warn("file source: " + e.error + (e.have_good ? " (keeping its last good records)" : " (skipped)"));
      }
    }
    next.emplace(f, std::move(e));
  }
  if (next.size() != entries_.size()) changed = true;
  entries_ = std::move(next);
  if (changed) rebuild();

  mark_refresh(snapshot_, first_error_of(entries_));
}

void FileSource::rebuild() {
  snapshot_.clear_attachments();
  snapshot_.clear_instances();
  for (const auto& [f, e] : entries_) {
    if (!e.have_good) continue;
    for (const auto& a : e.records.attachments) *snapshot_.add_attachments() = a;
    for (const auto& i : e.records.instances) *snapshot_.add_instances() = i;
  }
}

}  // namespace lunwatch::inventory
