// Rendering the audit: severities, exit status, redaction, text and JSON.
#include <algorithm>
#include <sstream>

#include "audit/audit.h"
#include "audit/finding.h"
#include "audit/fsutil.h"

namespace lunwatch::audit {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::kInfo: return "info";
    case Severity::kLow: return "low";
    case Severity::kMedium: return "medium";
    case Severity::kHigh: return "high";
    case Severity::kCritical: return "critical";
  }
  return "?";
}

const char* check_status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::kOk: return "ok";
    case CheckStatus::kFindings: return "findings";
    case CheckStatus::kNotApplicable: return "not applicable";
    case CheckStatus::kCouldNotCheck: return "could not check";
  }
  return "?";
}

int exit_status(const Report& r) {
  bool findings =
      std::any_of(r.findings.begin(), r.findings.end(), [](const Finding& f) { return f.severity >= Severity::kLow; });
  if (findings) return 1;
  bool incomplete = std::any_of(r.checks.begin(), r.checks.end(),
                                [](const CheckResult& c) { return c.status == CheckStatus::kCouldNotCheck; });
  return incomplete ? 2 : 0;
}

bool is_secret_key(std::string_view key) {
  std::string k = to_lower(key);
  for (const char* s : {"password", "secret", "passwd", "token", "private_key", "credential", "_key"}) {
    if (k.find(s) == std::string::npos) continue;
    // Option names that merely mention tokens and hold no secret.
    if (k == "send_service_user_token" || k.rfind("service_token_roles", 0) == 0 || k == "token_cache_time" ||
        k.find("token_") == 0 || k == "cinder_encryption_key_id" || k == "cinder_encryption_key_deletion_policy")
      continue;
    return true;
  }
  return false;
}

std::string redact(std::string_view key, std::string_view value) {
  if (is_secret_key(key)) return value.empty() ? "" : "<redacted>";
  // URLs with credentials: transport_url, [database] connection, ...
  std::string v(value);
  size_t scheme = v.find("://");
  while (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t at = v.find('@', start);
    size_t end = v.find_first_of("/,; ", start);
    if (at == std::string::npos || (end != std::string::npos && at > end)) {
      scheme = v.find("://", start);
      continue;
    }
    size_t colon = v.find(':', start);
    if (colon != std::string::npos && colon < at) v.replace(colon + 1, at - colon - 1, "<redacted>");
    scheme = v.find("://", start);
  }
  return v;
}

namespace {

std::string indent(const std::string& text, const std::string& first, const std::string& rest) {
  std::string out;
  std::stringstream ss(text);
  std::string line;
  bool f = true;
  while (std::getline(ss, line)) {
    out += (f ? first : rest) + line + "\n";
    f = false;
  }
  if (f) out += first + "\n";
  return out;
}

std::string evidence_line(const Evidence& e) {
  std::string loc = e.file;
  if (e.line > 0) loc += ":" + std::to_string(e.line);
  std::string what;
  if (!e.section.empty()) what += "[" + e.section + "] ";
  if (!e.key.empty()) what += e.key;
  if (e.value_set)
    what += " = " + (e.value.empty() ? std::string("\"\"") : e.value);
  else if (!e.key.empty())
    what += " (not set)";
  std::string out = loc;
  if (!what.empty()) out += (out.empty() ? "" : ": ") + what;
  if (!e.note.empty()) out += (out.empty() ? "" : " -- ") + e.note;
  return out;
}

}  // namespace

std::string format_text(const Report& r, bool show_ok) {
  std::ostringstream out;
  out << "lunwatch audit of " << r.root << ": CVE-2023-2088 (OSSA-2023-003) and Nova bug 1852106\n\n";
  std::vector<const Finding*> sorted;
  for (const auto& f : r.findings) sorted.push_back(&f);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Finding* a, const Finding* b) { return a->severity > b->severity; });
  out << "FINDINGS (" << r.findings.size() << ")\n";
  if (sorted.empty()) out << "  none\n";
  for (const Finding* f : sorted) {
    std::string sev = severity_name(f->severity);
    for (auto& ch : sev) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    sev.resize(9, ' ');
    std::string id = f->id;
    if (id.size() < 44) id.resize(44, ' ');
    out << "  " << sev << id << " " << f->title << "\n";
    if (!f->subject.empty()) out << "           subject:  " << f->subject << "\n";
    for (const auto& e : f->evidence) out << indent(evidence_line(e), "           evidence: ", "                     ");
    out << indent(f->fix, "           fix:      ", "                     ");
  }
  out << "\nCHECKS\n";
  for (const auto& c : r.checks) {
    if (!show_ok && c.status == CheckStatus::kOk) continue;
    std::string st = check_status_name(c.status);
    st.resize(17, ' ');
    std::string id = c.id;
    if (id.size() < 40) id.resize(40, ' ');
    out << "  " << st << id << (c.reason.empty() ? c.title : c.reason) << "\n";
  }
  int code = exit_status(r);
  out << "\nresult: "
      << (code == 0   ? "clean"
          : code == 1 ? "findings"
                      : "could not fully audit")
      << " (exit " << code << ")\n";
  return out.str();
}

nlohmann::json to_json(const Report& r) {
  using nlohmann::json;
  json j;
  j["schema"] = "lunwatch.audit.v1";
  j["root"] = r.root;
  j["exit_status"] = exit_status(r);
  json by_sev = json::object();
  for (const char* s : {"critical", "high", "medium", "low", "info"}) by_sev[s] = 0;
  for (const auto& f : r.findings) by_sev[severity_name(f.severity)] = by_sev[severity_name(f.severity)].get<int>() + 1;
  json by_status = json::object();
  for (const char* s : {"ok", "findings", "not applicable", "could not check"}) by_status[s] = 0;
  for (const auto& c : r.checks)
    by_status[check_status_name(c.status)] = by_status[check_status_name(c.status)].get<int>() + 1;
  j["summary"] = {{"findings", r.findings.size()}, {"by_severity", by_sev}, {"checks", by_status}};
  j["checks"] = json::array();
  for (const auto& c : r.checks) {
    json cj = {{"id", c.id}, {"title", c.title}, {"status", check_status_name(c.status)}};
    if (!c.reason.empty()) cj["reason"] = c.reason;
    j["checks"].push_back(cj);
  }
  j["findings"] = json::array();
  for (const auto& f : r.findings) {
    json fj = {{"id", f.id}, {"check", f.check}, {"severity", severity_name(f.severity)}, {"title", f.title}};
    if (!f.subject.empty()) fj["subject"] = f.subject;
    fj["evidence"] = json::array();
    for (const auto& e : f.evidence) {
      json ej = json::object();
      if (!e.file.empty()) ej["file"] = e.file;
      if (!e.section.empty()) ej["section"] = e.section;
      if (!e.key.empty()) ej["key"] = e.key;
      if (e.line > 0) ej["line"] = e.line;
      ej["value"] = e.value_set ? json(e.value) : json(nullptr);
      if (!e.note.empty()) ej["note"] = e.note;
      fj["evidence"].push_back(ej);
    }
    fj["fix"] = f.fix;
    j["findings"].push_back(fj);
  }
  return j;
}

}  // namespace lunwatch::audit
