#include "topology/sgio.h"

#include <fcntl.h>
#include <scsi/sg.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <atomic>
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
  if (f.fd < 0) return make_error(Errc::kIo, "cannot open " + node + ": " + std::strerror(errno));
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
  bool timeout_reported = false;  // main side only
};

IdentityVerifier::IdentityVerifier() : IdentityVerifier(Options{}) {}

IdentityVerifier::IdentityVerifier(Options options) : opt_(std::move(options)) {
  if (!opt_.inquire) opt_.inquire = inquire_identity;
}

// Workers are detached and own (through shared_ptr) all they touch, so a
// thread stuck in a hung SG_IO outlives nothing it needs.
IdentityVerifier::~IdentityVerifier() = default;

bool IdentityVerifier::submit(const std::string& name, DevNum dev) {
  std::lock_guard<std::mutex> lock(mu_);
  if (jobs_.count(name)) return false;  // pending or hung: do not pile up
  if (jobs_.size() >= opt_.max_in_flight) {
    refused_++;
    return false;
  }
  auto job = std::make_shared<Job>();
  job->name = name;
  job->dev = dev;
  job->started = std::chrono::steady_clock::now();
  job->deadline = job->started + opt_.timeout + std::chrono::milliseconds(500);
  jobs_[name] = job;
  std::thread([job, inquire = opt_.inquire, dev_dir = opt_.dev_dir, private_dir = opt_.private_dir,
               timeout = opt_.timeout]() {
    VerifyOutcome out;
    out.name = job->name;
    out.dev = job->dev;
    auto node = device_node(dev_dir, job->name, job->dev, private_dir);
    if (!node.ok()) {
      out.error = node.error().message;
    } else {
      auto id = inquire(node.value(), timeout);
      if (id.ok()) {
        out.ok = true;
        out.identity = id.value();
      } else {
        out.error = id.error().message;
      }
    }
    out.at_unix_ms = now_unix_ms();
    out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - job->started);
    job->result = std::move(out);
    job->done.store(true, std::memory_order_release);
  }).detach();
  return true;
}

std::vector<VerifyOutcome> IdentityVerifier::take() {
  std::vector<VerifyOutcome> out;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    auto& job = it->second;
    if (job->done.load(std::memory_order_acquire)) {
      // A late answer after a reported timeout is still the truth: deliver it.
      out.push_back(job->result);
      it = jobs_.erase(it);
      continue;
    }
    if (now >= job->deadline && !job->timeout_reported) {
      // Report the timeout once; keep the job so this LUN is not asked again
      // while its SG_IO is still stuck.
      job->timeout_reported = true;
      VerifyOutcome t;
      t.name = job->name;
      t.dev = job->dev;
      t.timed_out = true;
      t.error = "SG_IO INQUIRY did not answer within " + std::to_string(opt_.timeout.count()) + " ms";
      t.at_unix_ms = now_unix_ms();
      t.took = std::chrono::duration_cast<std::chrono::milliseconds>(now - job->started);
      timeouts_++;
      out.push_back(std::move(t));
    }
    ++it;
  }
  return out;
}

std::vector<VerifyOutcome> IdentityVerifier::wait_all(std::chrono::milliseconds limit) {
  std::vector<VerifyOutcome> all;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (true) {
    for (auto& o : take()) all.push_back(std::move(o));
    bool pending = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [n, j] : jobs_)
        if (!j->timeout_reported) pending = true;
    }
    if (!pending || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return all;
}

size_t IdentityVerifier::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

}  // namespace lunwatch::topology
