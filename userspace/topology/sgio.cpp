#include "topology/sgio.h"

#include <fcntl.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "topology/vpd.h"

namespace lunwatch::topology {
namespace {

int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Result<std::vector<uint8_t>> inquiry_vpd_len(int fd, uint8_t page, uint16_t alloc, std::chrono::milliseconds timeout) {
  std::vector<uint8_t> buf(alloc);
  uint8_t cdb[6] = {0x12, 0x01, page, static_cast<uint8_t>(alloc >> 8), static_cast<uint8_t>(alloc & 0xff), 0};
  uint8_t sense[32] = {};
  sg_io_hdr_t io{};
  io.interface_id = 'S';
  io.dxfer_direction = SG_DXFER_FROM_DEV;
  io.cmd_len = sizeof cdb;
  io.cmdp = cdb;
  io.dxfer_len = static_cast<unsigned>(buf.size());
  io.dxferp = buf.data();
  io.mx_sb_len = sizeof sense;
  io.sbp = sense;
  io.timeout = static_cast<unsigned>(timeout.count());
  if (::ioctl(fd, SG_IO, &io) < 0)
    return make_error(Errc::kIo, std::string("SG_IO INQUIRY failed: ") + std::strerror(errno));
  if (io.status != 0 || io.host_status != 0 || io.driver_status != 0) {
    char msg[128];
    std::snprintf(msg, sizeof msg, "INQUIRY VPD 0x%02x: status 0x%x host 0x%x driver 0x%x sense key 0x%x asc 0x%02x",
                  page, io.status, io.host_status, io.driver_status, io.sb_len_wr > 2 ? (sense[2] & 0xf) : 0,
                  io.sb_len_wr > 12 ? sense[12] : 0);
    return make_error(Errc::kIo, msg);
  }
  buf.resize(buf.size() - static_cast<size_t>(io.resid > 0 ? io.resid : 0));
  return buf;
}

// Asks for 252 bytes first (old devices reject more); a page that says it is
// longer (bytes 2-3) is asked for again at its full length, so an array with
// many designators is not cut in the middle of one.
Result<std::vector<uint8_t>> inquiry_vpd(int fd, uint8_t page, std::chrono::milliseconds timeout) {
  auto first = inquiry_vpd_len(fd, page, 252, timeout);
  if (!first.ok() || first->size() < 4) return first;
  size_t want = ((size_t{(*first)[2]} << 8) | (*first)[3]) + 4;
  if (want <= first->size() || want <= 252) return first;
  auto full = inquiry_vpd_len(fd, page, static_cast<uint16_t>(std::min<size_t>(want, 0xffff)), timeout);
  return full.ok() ? full : first;  // the short page still has the designators that arrived whole
}

}  // namespace

Result<v1::Identity> inquire_identity(const std::string& node, std::chrono::milliseconds timeout) {
  Fd f;
  f.fd = ::open(node.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f.fd < 0) {
    // No such node or device: gone, not failing (the queue does not retry it).
    // ENXIO is not gone: a path whose session is down or failed answers it,
    // and must be asked again once it is back.
    int e = errno;
    return make_error(e == ENODEV || e == ENOENT ? Errc::kNotFound : Errc::kIo,
                      "cannot open " + node + ": " + std::strerror(e));
  }
  auto p83 = inquiry_vpd(f.fd, 0x83, timeout);
  if (!p83.ok()) return p83.error();
  auto wwid = parse_vpd83(p83.value());
  if (!wwid.ok()) return wwid.error();
  v1::Identity id;
  id.set_wwid(wwid.value());
  auto p80 = inquiry_vpd(f.fd, 0x80, timeout);  // optional page: no serial is not an error
  if (p80.ok()) {
    auto serial = parse_vpd80(p80.value());
    if (serial.ok()) id.set_serial(serial.value());
  }
  return id;
}

Result<std::string> device_node(const std::string& dev_dir, const std::string& name, DevNum dev,
                                const std::string& private_dir) {
  std::string path = dev_dir + "/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && from_user_dev(st.st_rdev) == dev) return path;
  std::error_code ec;
  std::filesystem::create_directories(private_dir, ec);
  std::string priv = private_dir + "/" + std::to_string(dev.major) + "_" + std::to_string(dev.minor);
  if (::stat(priv.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && from_user_dev(st.st_rdev) == dev) return priv;
  ::unlink(priv.c_str());
  if (::mknod(priv.c_str(), S_IFBLK | 0600, to_user_dev(dev)) != 0)
    return make_error(Errc::kIo, "no device node for " + name + " (" + to_string(dev) + "): " + std::strerror(errno));
  return priv;
}

v1::Event identity_event(const VerifyOutcome& o) {
  v1::Event ev;
  auto* c = ev.mutable_identity();
  c->set_dev(to_string(o.dev));
  c->set_dev_name(o.name);
  c->set_ok(o.ok);
  c->set_timed_out(o.timed_out);
  *c->mutable_identity() = o.identity;
  c->set_error(o.error);
  c->set_took_ms(static_cast<uint32_t>(o.took.count()));
  ev.set_unix_ms(o.at_unix_ms);
  return ev;
}

struct IdentityVerifier::Job {
  std::string name;
  DevNum dev;
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point deadline;
  VerifyOutcome result;           // written by the worker before done
  std::atomic<bool> done{false};  // release by the worker, acquire by take()
  bool timeout_reported = false;  // main side only: hung, no longer counted as running
};

struct IdentityVerifier::Entry {
  DevNum dev;
  v1::VerifyReason reason = v1::VERIFY_UNKNOWN;
  bool queued = false;
  bool rerun = false;        // asked again while its check ran: one more after it
  std::shared_ptr<Job> job;  // running or hung
  uint32_t failures = 0;     // consecutive failed answers
  std::optional<TimePoint> retry_at;
  TimePoint requested{};  // the oldest unanswered request
  TimePoint first_asked{};
  std::optional<TimePoint> last_good;
};

IdentityVerifier::IdentityVerifier() : IdentityVerifier(Options{}) {}

IdentityVerifier::IdentityVerifier(Options options) : opt_(std::move(options)) {
  if (!opt_.inquire) opt_.inquire = inquire_identity;
  if (!opt_.node)
    opt_.node = [dev_dir = opt_.dev_dir, private_dir = opt_.private_dir](const std::string& name, DevNum dev) {
      return device_node(dev_dir, name, dev, private_dir);
    };
  if (opt_.max_in_flight == 0) opt_.max_in_flight = 1;
}

// Workers are detached and own (through shared_ptr) all they touch, so a
// thread stuck in a hung SG_IO outlives nothing it needs.
IdentityVerifier::~IdentityVerifier() = default;

namespace {
// A specific trigger (scan, reinstate, new flow) says more than a periodic one.
bool weak_reason(v1::VerifyReason r) { return r == v1::VERIFY_UNKNOWN || r == v1::VERIFY_PERIODIC; }
}  // namespace

bool IdentityVerifier::submit(const std::string& name, DevNum dev, v1::VerifyReason reason) {
  if (name.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = entries_.try_emplace(name);
  Entry& e = it->second;
  if (fresh || !(e.dev == dev)) {  // another device under this name: starts afresh
    e.dev = dev;
    e.first_asked = now;
    e.last_good.reset();
    e.failures = 0;
    e.retry_at.reset();
  }
  if (!e.queued && !e.job) e.requested = now;
  if (!weak_reason(reason) || weak_reason(e.reason)) e.reason = reason;
  if (e.job) {
    e.rerun = true;
    return true;
  }
  if (e.queued) return true;
  if (e.retry_at && reason == v1::VERIFY_PERIODIC) return true;  // its backoff holds
  e.retry_at.reset();
  e.queued = true;
  queue_.push_back(name);
  pump(now);
  return true;
}

void IdentityVerifier::start(const std::string& name, Entry& e, TimePoint now) {
  auto job = std::make_shared<Job>();
  job->name = name;
  job->dev = e.dev;
  job->started = now;
  job->deadline = now + opt_.timeout + std::chrono::milliseconds(500);
  e.queued = false;
  e.job = job;
  started_++;
  if (e.failures) retries_++;
  v1::VerifyReason reason = e.reason;
  uint32_t attempt = e.failures + 1;
  e.reason = v1::VERIFY_UNKNOWN;
  std::thread([job, reason, attempt, inquire = opt_.inquire, node_of = opt_.node, timeout = opt_.timeout,
               answered = answered_]() {
    VerifyOutcome out;
    out.name = job->name;
    out.dev = job->dev;
    out.reason = reason;
    out.attempt = attempt;
    out.asked_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(job->started.time_since_epoch()).count());
    auto node = node_of(job->name, job->dev);
    if (!node.ok()) {
      out.error = node.error().message;
    } else {
      auto id = inquire(node.value(), timeout);
      if (id.ok()) {
        out.ok = true;
        out.identity = id.value();
      } else {
        out.error = id.error().message;
        out.gone = id.error().code == Errc::kNotFound;
      }
    }
    out.at_unix_ms = now_unix_ms();
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - job->started);
    job->result = std::move(out);
    job->done.store(true, std::memory_order_release);
    answered->fetch_add(1, std::memory_order_release);
  }).detach();
}

void IdentityVerifier::pump(TimePoint now) {
  size_t running = 0;
  for (auto& [name, e] : entries_) {
    if (e.job && !e.job->timeout_reported) running++;
    if (e.retry_at && *e.retry_at <= now && !e.job && !e.queued) {
      e.retry_at.reset();
      e.queued = true;
      e.requested = now;
      if (weak_reason(e.reason)) e.reason = v1::VERIFY_ERROR_RECOVERY;
      queue_.push_back(name);
    }
  }
  while (running < opt_.max_in_flight && !queue_.empty()) {
    std::string name = std::move(queue_.front());
    queue_.pop_front();
    auto it = entries_.find(name);
    if (it == entries_.end() || !it->second.queued) continue;  // forgotten
    start(name, it->second, now);
    running++;
  }
}

std::vector<VerifyOutcome> IdentityVerifier::take() {
  std::vector<VerifyOutcome> out;
  taken_answers_.store(answered_->load(std::memory_order_acquire));  // before looking: none is missed
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, e] : entries_) {
    if (!e.job) continue;
    auto& job = e.job;
    if (job->done.load(std::memory_order_acquire)) {
      // A late answer after a reported timeout is still the truth: deliver it.
      VerifyOutcome o = job->result;
      job.reset();
      if (o.ok) {
        e.last_good = now;
        e.failures = 0;
        e.retry_at.reset();
      } else if (o.gone) {
        e.failures = 0;
        e.retry_at.reset();
        e.rerun = false;
      } else {
        e.failures++;
        if (e.failures < opt_.max_attempts) {
          auto back = opt_.retry_base * (1LL << std::min<uint32_t>(e.failures - 1, 20));
          e.retry_at = now + std::min<std::chrono::milliseconds>(back, opt_.retry_max);
        } else {
          e.retry_at.reset();  // given up until the next request
        }
      }
      // Asked again while it ran: a fresh answer follows (after a failure the
      // retry is that answer).
      if (e.rerun && o.ok) {
        e.queued = true;
        e.requested = now;
        queue_.push_back(name);
      }
      e.rerun = false;
      out.push_back(std::move(o));
      continue;
    }
    if (now >= job->deadline && !job->timeout_reported) {
      // Report the timeout once; keep the job so this LUN is not asked again
      // while its SG_IO is still stuck, but stop counting it as running so
      // the other devices' checks go on.
      job->timeout_reported = true;
      VerifyOutcome t;
      t.name = name;
      t.dev = e.dev;
      t.timed_out = true;
      t.error = "SG_IO INQUIRY did not answer within " + std::to_string(opt_.timeout.count()) + " ms";
      t.at_unix_ms = now_unix_ms();
      t.took = std::chrono::duration_cast<std::chrono::milliseconds>(now - job->started);
      t.asked_ns = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(job->started.time_since_epoch()).count());
      t.attempt = e.failures + 1;
      timeouts_++;
      out.push_back(std::move(t));
    }
  }
  pump(now);
  return out;
}

std::vector<VerifyOutcome> IdentityVerifier::wait_all(std::chrono::milliseconds limit) {
  std::vector<VerifyOutcome> all;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    for (auto& o : take()) all.push_back(std::move(o));
    if (in_flight() == 0 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return all;
}

size_t IdentityVerifier::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [name, e] : entries_)
    if (e.queued || (e.job && !e.job->timeout_reported)) n++;
  return n;
}

IdentityVerifier::Stats IdentityVerifier::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s;
  auto now = std::chrono::steady_clock::now();
  for (const auto& [name, e] : entries_) {
    bool pending = e.queued || e.job;
    if (e.queued)
      s.queued++;
    else if (e.job && e.job->timeout_reported)
      s.hung++;
    else if (e.job)
      s.running++;
    else if (e.retry_at)
      s.retry_wait++;
    if (pending) s.oldest_age_s = std::max(s.oldest_age_s, std::chrono::duration<double>(now - e.requested).count());
  }
  s.started_total = started_;
  s.retries_total = retries_;
  s.timeouts_total = timeouts_;
  return s;
}

std::optional<std::chrono::milliseconds> IdentityVerifier::since_good(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return std::nullopt;
  auto ref = it->second.last_good ? *it->second.last_good : it->second.first_asked;
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ref);
}

void IdentityVerifier::forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase(name);
}

}  // namespace lunwatch::topology
