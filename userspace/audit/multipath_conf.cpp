#include "audit/multipath_conf.h"

#include <cctype>

namespace lunwatch::audit {
namespace {

constexpr size_t kMaxBlockDepth = 8;
constexpr size_t kMaxTokens = 1u << 20;

struct Token {
  enum Kind { kWord, kOpen, kClose, kEol } kind;
  std::string text;
  int line;
};

Result<std::vector<Token>> tokenize(std::string_view text, const std::string& file) {
  std::vector<Token> out;
  int line = 1;
  size_t i = 0;
  while (i < text.size()) {
    if (out.size() > kMaxTokens) return make_error(Errc::kParse, file + ": more than a million tokens");
    char c = text[i];
    if (c == '\n') {
      out.push_back({Token::kEol, "", line});
      ++line;
      ++i;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '#' || c == '!') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '{') {
      out.push_back({Token::kOpen, "{", line});
      ++i;
    } else if (c == '}') {
      out.push_back({Token::kClose, "}", line});
      ++i;
    } else if (c == '"') {
      size_t close = text.find('"', i + 1);
      size_t nl = text.find('\n', i + 1);
      if (close == std::string_view::npos || (nl != std::string_view::npos && nl < close))
        return make_error(Errc::kParse, file + ":" + std::to_string(line) + ": unterminated quoted string");
      out.push_back({Token::kWord, std::string(text.substr(i + 1, close - i - 1)), line});
      i = close + 1;
    } else {
      size_t j = i;
      while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j])) && text[j] != '{' &&
             text[j] != '}' && text[j] != '"')
        ++j;
      out.push_back({Token::kWord, std::string(text.substr(i, j - i)), line});
      i = j;
    }
  }
  out.push_back({Token::kEol, "", line});
  return out;
}

}  // namespace

const MpathOption* MpathBlock::find(std::string_view key) const {
  for (auto it = options.rbegin(); it != options.rend(); ++it)
    if (it->key == key) return &*it;
  return nullptr;
}

Result<MpathBlock> parse_multipath_conf(std::string_view text, const std::string& file) {
  auto toks = tokenize(text, file);
  if (!toks) return toks.error();
  const auto& t = toks.value();
  MpathBlock top;
  top.file = file;
  // Blocks are built on a stack and appended to their parent when they close.
  std::vector<MpathBlock> open;  // the blocks being built, innermost last
  auto err = [&](int line, const std::string& what) {
    return make_error(Errc::kParse, file + ":" + std::to_string(line) + ": " + what);
  };
  size_t i = 0;
  while (i < t.size()) {
    const Token& tok = t[i];
    if (tok.kind == Token::kEol) {
      ++i;
      continue;
    }
    if (tok.kind == Token::kClose) {
      if (open.empty()) return err(tok.line, "'}' without an open block");
      MpathBlock done = std::move(open.back());
      open.pop_back();
      (open.empty() ? top : open.back()).blocks.push_back(std::move(done));
      ++i;
      continue;
    }
    if (tok.kind == Token::kOpen) return err(tok.line, "'{' without a block name");
    // A word: a block name when '{' follows (same or next line), else an option.
    size_t j = i + 1;
    while (j < t.size() && t[j].kind == Token::kEol) ++j;
    if (j < t.size() && t[j].kind == Token::kOpen) {
      // multipath.conf nests at most 2 deep (devices { device { } }); a deep
      // file would cost a recursive destructor the stack.
      if (open.size() >= kMaxBlockDepth)
        return err(tok.line, "blocks nested deeper than " + std::to_string(kMaxBlockDepth));
      MpathBlock b;
      b.name = tok.text;
      b.line = tok.line;
      b.file = file;
      open.push_back(std::move(b));
      i = j + 1;
      continue;
    }
    MpathOption opt;
    opt.key = tok.text;
    opt.line = tok.line;
    size_t k = i + 1;
    for (; k < t.size() && t[k].kind == Token::kWord; ++k) {
      if (!opt.value.empty()) opt.value += ' ';
      opt.value += t[k].text;
    }
    if (open.empty()) return err(tok.line, "option '" + opt.key + "' outside any block");
    open.back().options.push_back(std::move(opt));
    i = k;  // a '}' on the same line is handled by the loop
  }
  if (!open.empty()) return err(open.back().line, "block '" + open.back().name + "' is never closed");
  return top;
}

}  // namespace lunwatch::audit
