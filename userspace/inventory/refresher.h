#pragma once
// Attachment sources refreshed off the agent's event loop. A Cinder listing
// (30 s timeout, up to 200 pages), a Keystone authentication, a directory of
// libvirt XML or a JSON file on a hung NFS mount may each take seconds; the
// loop that judges I/O and raises alerts must never wait for them.
//
// One worker thread per source (so a hung Cinder never delays libvirt's
// domain list). request() asks every source that is idle for one refresh and
// returns at once; a source whose previous refresh is still running skips the
// tick (counted, logged once per stall). Each finished refresh is handed over
// as an immutable copy of its snapshot through take(): the loop keeps using
// the last good view until a new one arrives, and a source's own failure
// handling (last good attachments kept, snapshot marked stale) is unchanged.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "inventory/source.h"

namespace lunwatch::inventory {

class AsyncRefresher {
 public:
  // Runs in the worker after each refresh, on its copy of the snapshot (e.g.
  // resolving device paths with stat(): file system work stays off the loop).
  using PostProcess = std::function<void(v1::SourceSnapshot&)>;
  struct Update {
    size_t index = 0;  // position in the sources given to the constructor
    v1::SourceSnapshot snapshot;
    std::chrono::milliseconds took{0};
  };
  struct SourceState {
    std::string name;
    v1::SourceKind kind = v1::SOURCE_UNKNOWN;
    bool busy = false;
    std::chrono::milliseconds busy_for{0};  // how long the running refresh has taken so far
    uint64_t refreshes = 0;                 // finished
    uint64_t skipped = 0;                   // requests that found the previous refresh still running
  };

  explicit AsyncRefresher(std::vector<std::unique_ptr<AttachmentSource>> sources, PostProcess post = {});
  ~AsyncRefresher();  // aborts HTTP requests in flight (abort_http_requests) and joins
  AsyncRefresher(const AsyncRefresher&) = delete;
  AsyncRefresher& operator=(const AsyncRefresher&) = delete;

  // Never blocks: each idle source starts one refresh; busy ones skip.
  void request();
  // Finished refreshes since the last call, oldest first. Never blocks on a source.
  std::vector<Update> take();
  // Start-up only: waits until every source finished at least one refresh or
  // the deadline passed; true when all did.
  bool wait_all(std::chrono::milliseconds deadline);
  size_t size() const { return workers_.size(); }
  std::vector<SourceState> states() const;

 private:
  struct Worker {
    std::unique_ptr<AttachmentSource> source;
    std::string name;
    v1::SourceKind kind = v1::SOURCE_UNKNOWN;
    bool wanted = false;
    bool busy = false;
    bool stall_logged = false;
    std::chrono::steady_clock::time_point started{};
    uint64_t refreshes = 0;
    uint64_t skipped = 0;
    std::thread thread;
  };
  void work(size_t i);

  PostProcess post_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // workers wait for a request or stop
  std::condition_variable done_cv_;  // wait_all waits for refreshes
  bool stop_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Update> done_;
};

// A cloud-wide list (Cinder, or a file) that suddenly lacks every record of
// the instances this host runs (libvirt's domains, which still hold their
// volumes) is suspect: a partial answer (a policy change, a proxy, a wrong
// project), not a mass deletion. True when `before` had at least min_before
// records of local instances and `after` has none while libvirt still lists
// attachments of those instances. One deleted attachment (the CVE's own
// first step) is never suspect with min_before >= 2.
bool lacks_every_local_attachment(const v1::SourceSnapshot& before, const v1::SourceSnapshot& after,
                                  const v1::SourceSnapshot& libvirt, size_t min_before = 2);

}  // namespace lunwatch::inventory
