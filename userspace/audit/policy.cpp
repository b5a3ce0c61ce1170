#include "audit/policy.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "audit/fsutil.h"
#include "common/json_input.h"

namespace lunwatch::audit {
namespace {

Error perr(const std::string& file, int line, const std::string& what) {
  return make_error(Errc::kParse, file + ":" + std::to_string(line) + ": " + what);
}

int line_of(std::string_view text, size_t pos) {
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

Result<PolicyFile> parse_json_policy(std::string_view text, const std::string& file) {
  PolicyFile p;
  p.files.push_back(file);
  size_t err_byte = 0;
  auto parsed = parse_json(text, {}, &err_byte);
  if (!parsed.ok()) {
    size_t off = std::min(err_byte, text.size());  // byte offset -> line
    return perr(file, line_of(text, off ? off - 1 : 0), "invalid JSON: " + parsed.error().message);
  }
  const nlohmann::json& j = parsed.value();
  if (!j.is_object()) return perr(file, 1, "policy JSON must be an object of \"name\": \"rule\"");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_string()) return perr(file, 1, "rule '" + it.key() + "' is not a string");
    PolicyRule r{it.key(), it.value().get<std::string>(), file, 1};
    size_t at = text.find("\"" + it.key() + "\"");
    if (at != std::string_view::npos) r.line = line_of(text, at);
    p.rules[r.name] = r;
  }
  return p;
}

// A YAML scalar at s[i]: quoted ("..." with \ escapes, '...' with '' escapes)
// or plain up to `stop` (": " for keys, end for values).
Result<std::string> yaml_quoted(std::string_view s, size_t& i, const std::string& file, int line) {
  char q = s[i];
  std::string out;
  ++i;
  while (i < s.size()) {
    char c = s[i];
    if (q == '"' && c == '\\' && i + 1 < s.size()) {
      char n = s[i + 1];
      out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
      i += 2;
      continue;
    }
    if (c == q) {
      if (q == '\'' && i + 1 < s.size() && s[i + 1] == '\'') {
        out += '\'';
        i += 2;
        continue;
      }
      ++i;
      return out;
    }
    out += c;
    ++i;
  }
  return perr(file, line, "unterminated quoted string");
}

std::string strip_comment(std::string_view v) {
  // A plain scalar ends at " #".
  size_t h = v.find(" #");
  if (h != std::string_view::npos) v = v.substr(0, h);
  return trim(v);
}

Result<PolicyFile> parse_yaml_policy(std::string_view text, const std::string& file) {
  PolicyFile p;
  p.files.push_back(file);
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view l = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    lines.push_back(l);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  auto indent_of = [](std::string_view l) {
    size_t k = 0;
    while (k < l.size() && l[k] == ' ') ++k;
    return k;
  };
  for (size_t n = 0; n < lines.size(); ++n) {
    std::string_view l = lines[n];
    int lineno = static_cast<int>(n) + 1;
    std::string t = trim(l);
    if (t.empty() || t[0] == '#' || t == "---" || t == "...") continue;
    if (t == "{}") continue;  // an empty mapping
    if (indent_of(l) != 0) return perr(file, lineno, "unexpected indentation (policy files are one flat mapping)");
    size_t i = 0;
    std::string key;
    if (t[0] == '"' || t[0] == '\'') {
      auto k = yaml_quoted(t, i, file, lineno);
      if (!k) return k.error();
      key = k.value();
      while (i < t.size() && t[i] == ' ') ++i;
      if (i >= t.size() || t[i] != ':') return perr(file, lineno, "expected ':' after the rule name");
      ++i;
    } else {
      size_t c = t.find(": ");
      if (c == std::string::npos && !t.empty() && t.back() == ':') c = t.size() - 1;
      if (c == std::string::npos) return perr(file, lineno, "expected '\"rule name\": \"rule\"'");
      key = trim(std::string_view(t).substr(0, c));
      i = c + 1;
    }
    while (i < t.size() && t[i] == ' ') ++i;
    std::string value;
    std::string_view rest = std::string_view(t).substr(i);
    if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) {
      size_t k = 0;
      auto v = yaml_quoted(rest, k, file, lineno);
      if (!v) {
        // A quoted scalar may span lines: join until it closes.
        std::string joined(rest);
        size_t m = n + 1;
        for (; m < lines.size(); ++m) {
          joined += ' ';
          joined += trim(lines[m]);
          size_t kk = 0;
          auto vv = yaml_quoted(joined, kk, file, lineno);
          if (vv) {
            value = vv.value();
            break;
          }
        }
        if (m >= lines.size()) return v.error();
        n = m;
      } else {
        value = v.value();
        std::string tail = trim(rest.substr(k));
        if (!tail.empty() && tail[0] != '#') return perr(file, lineno, "text after the quoted rule: '" + tail + "'");
      }
    } else if (!rest.empty() && (rest[0] == '>' || rest[0] == '|')) {
      bool folded = rest[0] == '>';
      size_t m = n + 1;
      for (; m < lines.size() && (trim(lines[m]).empty() || indent_of(lines[m]) > 0); ++m) {
        if (!value.empty()) value += folded ? " " : "\n";
        value += trim(lines[m]);
      }
      value = trim(value);
      n = m - 1;
    } else {
      value = strip_comment(rest);
      // Plain scalars continue on more-indented lines.
      size_t m = n + 1;
      for (; m < lines.size() && !trim(lines[m]).empty() && indent_of(lines[m]) > 0; ++m) {
        value += ' ';
        value += strip_comment(lines[m]);
      }
      n = m - 1;
    }
    p.rules[key] = PolicyRule{key, value, file, lineno};
  }
  return p;
}

// --- rule expressions -------------------------------------------------------

Tri t_and(Tri a, Tri b) {
  if (a == Tri::kFalse || b == Tri::kFalse) return Tri::kFalse;
  if (a == Tri::kTrue && b == Tri::kTrue) return Tri::kTrue;
  return Tri::kUnknown;
}
Tri t_or(Tri a, Tri b) {
  if (a == Tri::kTrue || b == Tri::kTrue) return Tri::kTrue;
  if (a == Tri::kFalse && b == Tri::kFalse) return Tri::kFalse;
  return Tri::kUnknown;
}
Tri t_not(Tri a) { return a == Tri::kTrue ? Tri::kFalse : a == Tri::kFalse ? Tri::kTrue : Tri::kUnknown; }

std::vector<std::string> tokenize_rule(std::string_view expr) {
  std::vector<std::string> out;
  std::string cur;
  auto push = [&]() {
    if (!cur.empty()) out.push_back(cur);
    cur.clear();
  };
  char quote = 0;
  for (char c : expr) {
    if (quote) {
      cur += c;
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      cur += c;
    } else if (c == '(' || c == ')') {
      push();
      out.emplace_back(1, c);
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      push();
    } else {
      cur += c;
    }
  }
  push();
  return out;
}

class Evaluator {
 public:
  Evaluator(const PolicyFile& p, Verdict& v) : p_(p), v_(v) {}

  Tri expr(std::string_view e) {
    auto toks = tokenize_rule(e);
    if (toks.empty()) return Tri::kTrue;  // "" allows everyone
    std::vector<std::string> saved = std::move(toks_);
    size_t saved_pos = pos_;
    toks_ = tokenize_rule(e);
    pos_ = 0;
    Tri r = or_expr();
    if (pos_ != toks_.size()) {
      v_.notes.push_back("could not parse rule '" + std::string(e) + "'");
      r = Tri::kUnknown;
    }
    toks_ = std::move(saved);
    pos_ = saved_pos;
    return r;
  }

 private:
  bool peek(std::string_view w) const { return pos_ < toks_.size() && to_lower(toks_[pos_]) == w; }
  Tri or_expr() {
    Tri r = and_expr();
    while (peek("or")) {
      ++pos_;
      r = t_or(r, and_expr());
    }
    return r;
  }
  Tri and_expr() {
    Tri r = not_expr();
    while (peek("and")) {
      ++pos_;
      r = t_and(r, not_expr());
    }
    return r;
  }
  Tri not_expr() {
    if (peek("not")) {
      ++pos_;
      return t_not(not_expr());
    }
    return atom();
  }
  Tri atom() {
    if (pos_ >= toks_.size()) {
      v_.notes.push_back("rule ends early");
      return Tri::kUnknown;
    }
    std::string t = toks_[pos_++];
    if (t == "(") {
      Tri r = or_expr();
      if (pos_ < toks_.size() && toks_[pos_] == ")") ++pos_;
      return r;
    }
    return check(t);
  }
  Tri check(const std::string& t) {
    if (t == "@" || to_lower(t) == "true") return Tri::kTrue;
    if (t == "!" || to_lower(t) == "false") return Tri::kFalse;
    size_t colon = t.find(':');
    if (colon == std::string::npos) return Tri::kUnknown;
    std::string kind = to_lower(t.substr(0, colon));
    std::string match = t.substr(colon + 1);
    if (match.size() >= 2 && (match.front() == '\'' || match.front() == '"') && match.back() == match.front())
      match = match.substr(1, match.size() - 2);
    if (kind == "rule") {
      const PolicyRule* r = p_.find(match);
      if (!r) {
        v_.notes.push_back("rule:" + match + " is not defined in the policy file (Cinder's default applies)");
        return Tri::kUnknown;
      }
      if (std::find(stack_.begin(), stack_.end(), match) != stack_.end()) {
        v_.notes.push_back("rule:" + match + " refers to itself");
        return Tri::kUnknown;
      }
      stack_.push_back(match);
      Tri res = expr(r->expr);
      stack_.pop_back();
      return res;
    }
    if ((kind == "role" || kind == "roles") && to_lower(match) == "service") return Tri::kFalse;
    if (kind.rfind("service_", 0) == 0) return Tri::kFalse;  // service_user_id, service_roles, ...
    return Tri::kUnknown;
  }

  const PolicyFile& p_;
  Verdict& v_;
  std::vector<std::string> toks_;
  size_t pos_ = 0;
  std::vector<std::string> stack_;
};

}  // namespace

void PolicyFile::merge(const PolicyFile& later) {
  for (const auto& [k, r] : later.rules) rules[k] = r;
  files.insert(files.end(), later.files.begin(), later.files.end());
}

const PolicyRule* PolicyFile::find(std::string_view name) const {
  auto it = rules.find(std::string(name));
  return it == rules.end() ? nullptr : &it->second;
}

Result<PolicyFile> parse_policy(std::string_view text, const std::string& file) {
  size_t k = 0;
  while (k < text.size() && std::isspace(static_cast<unsigned char>(text[k]))) ++k;
  if (k < text.size() && text[k] == '{') return parse_json_policy(text, file);
  return parse_yaml_policy(text, file);
}

Verdict evaluate_expr_for_non_service(const PolicyFile& policy, std::string_view expr) {
  Verdict v;
  Evaluator ev(policy, v);
  v.non_service_passes = ev.expr(expr);
  return v;
}

Verdict evaluate_for_non_service(const PolicyFile& policy, std::string_view name) {
  const PolicyRule* r = policy.find(name);
  if (!r) {
    Verdict v;
    v.notes.push_back("'" + std::string(name) +
                      "' is not in the policy file: Cinder's default lets project members through");
    return v;
  }
  return evaluate_expr_for_non_service(policy, r->expr);
}

}  // namespace lunwatch::audit
