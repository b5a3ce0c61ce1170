#include "agent/stats_file.h"

#include <fstream>

#include "common/devt.h"

namespace lunwatch::agent {

void write_stats_file(const std::string& path, const probes::Probes& p, const LoopWork* loop) {
  std::ofstream out(path);
  out << "{\"flows\":[";
  bool first = true;
  for (const auto& f : p.flows()) {
    out << (first ? "" : ",") << "{\"pid\":" << f.key.tgid << ",\"dev\":\"" << to_string(from_kernel_dev(f.key.dev))
        << "\",\"read_bytes\":" << f.val.bytes[0] << ",\"write_bytes\":" << f.val.bytes[1]
        << ",\"read_ios\":" << f.val.ios[0] << ",\"write_ios\":" << f.val.ios[1] << "}";
    first = false;
  }
  out << "],\"drops\":{";
  auto drops = p.drops();
  for (size_t i = 0; i < drops.size(); ++i)
    out << (i ? "," : "") << "\"" << probes::drop_cause_name(static_cast<int>(i)) << "\":" << drops[i];
  auto stats = p.stats();
  out << "},\"io_seen\":" << stats[LW_STAT_IO_SEEN] << ",\"flow_repeat\":" << stats[LW_STAT_FLOW_REPEAT]
      << ",\"events_emitted\":{";
  for (int t = 1; t < LW_EV_MAX; ++t) out << (t > 1 ? "," : "") << "\"" << t << "\":" << stats[LW_STAT_EVENTS_BASE + t];
  out << "},\"programs\":[";
  first = true;
  for (const auto& s : p.program_stats()) {
    out << (first ? "" : ",") << "{\"program\":\"" << s.program << "\",\"hook\":\"" << s.hook
        << "\",\"run_cnt\":" << s.run_cnt << ",\"run_time_ns\":" << s.run_time_ns << "}";
    first = false;
  }
  const auto& c = p.consumer_stats();
  out << "],\"consumer\":{\"events\":" << c.events << ",\"truncated\":" << c.decode_truncated
      << ",\"unknown\":" << c.decode_unknown << ",\"bad_size\":" << c.decode_bad_size << "}";
  if (loop) {
    out << ",\"loop_work\":{";
    first = true;
    for (const auto& [name, w] : loop->works()) {
      out << (first ? "" : ",") << "\"" << name << "\":{\"seconds\":" << w.seconds << ",\"runs\":" << w.runs
          << ",\"longest_s\":" << w.longest_s << "}";
      first = false;
    }
    out << "}";
  }
  out << "}\n";
}

}  // namespace lunwatch::agent
