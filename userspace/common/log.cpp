#include "common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace lunwatch::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
std::mutex g_mu;
const char* name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warning";
    case Level::kError: return "error";
  }
  return "?";
}
}  // namespace

void set_level(Level level) { g_level = level; }
Level level() { return g_level; }

void write(Level l, std::string_view message) {
  if (l < g_level.load()) return;
  std::string line = "lunwatch: ";
  line += name(l);
  line += ": ";
  line += message;
  if (line.back() != '\n') line += '\n';
  std::lock_guard<std::mutex> lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace lunwatch::log
