#include "inventory/refresher.h"

#include <algorithm>
#include <set>

#include "common/log.h"
#include "inventory/http.h"

namespace lunwatch::inventory {

AsyncRefresher::AsyncRefresher(std::vector<std::unique_ptr<AttachmentSource>> sources, PostProcess post)
    : post_(std::move(post)) {
  for (auto& s : sources) {
    auto w = std::make_unique<Worker>();
    w->name = s->name();
    w->kind = s->kind();
    w->source = std::move(s);
    workers_.push_back(std::move(w));
  }
  for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->thread = std::thread([this, i] { work(i); });
}

AsyncRefresher::~AsyncRefresher() {
  {
    std::unique_lock<std::mutex> l(mu_);
    stop_ = true;
    cv_.notify_all();
    // A request stuck on a silent endpoint ends within about a second of an
    // abort; a refresh may run several requests (auth, pages): abort again
    // until every worker is idle.
    auto any_busy = [&] {
      for (const auto& w : workers_)
        if (w->busy) return true;
      return false;
    };
    while (any_busy()) {
      abort_http_requests();
      done_cv_.wait_for(l, std::chrono::milliseconds(200));
    }
  }
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
}

void AsyncRefresher::request() {
  std::lock_guard<std::mutex> l(mu_);
  auto now = std::chrono::steady_clock::now();
  for (auto& w : workers_) {
    if (w->busy || w->wanted) {
      w->skipped++;
      auto for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - w->started).count();
      if (w->busy && !w->stall_logged) {
        w->stall_logged = true;
        log::warn("attachment source " + w->name + ": refresh still running after " + std::to_string(for_ms) +
                  " ms; keeping its last good view (lunwatch_attachment_source_refresh_running_seconds)");
      }
      continue;
    }
    w->wanted = true;
  }
  cv_.notify_all();
}

std::vector<AsyncRefresher::Update> AsyncRefresher::take() {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<Update> out;
  out.swap(done_);
  return out;
}

bool AsyncRefresher::wait_all(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> l(mu_);
  return done_cv_.wait_for(l, deadline, [&] {
    for (const auto& w : workers_)
      if (w->refreshes == 0) return false;
    return true;
  });
}

std::vector<AsyncRefresher::SourceState> AsyncRefresher::states() const {
  std::lock_guard<std::mutex> l(mu_);
  auto now = std::chrono::steady_clock::now();
  std::vector<SourceState> out;
  for (const auto& w : workers_) {
    SourceState s;
    s.name = w->name;
    s.kind = w->kind;
    s.busy = w->busy;
    if (w->busy) s.busy_for = std::chrono::duration_cast<std::chrono::milliseconds>(now - w->started);
    s.refreshes = w->refreshes;
    s.skipped = w->skipped;
    out.push_back(s);
  }
  return out;
}

void AsyncRefresher::work(size_t i) {
  Worker& w = *workers_[i];
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return stop_ || w.wanted; });
    if (stop_) return;
    w.wanted = false;
    w.busy = true;
    w.started = std::chrono::steady_clock::now();
    l.unlock();
    // The source is touched by this thread only (sources are not thread-safe).
    w.source->refresh();
    Update u;
    u.index = i;
    u.snapshot = w.source->snapshot();
    if (post_) post_(u.snapshot);
    u.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - w.started);
    l.lock();
    if (w.stall_logged)
      log::info("attachment source " + w.name + ": refresh finished after " + std::to_string(u.took.count()) + " ms");
    w.stall_logged = false;
    w.busy = false;
    w.refreshes++;
    done_.push_back(std::move(u));
    done_cv_.notify_all();
  }
}

bool lacks_every_local_attachment(const v1::SourceSnapshot& before, const v1::SourceSnapshot& after,
                                  const v1::SourceSnapshot& libvirt, size_t min_before) {
  std::set<std::string> local;  // instances here that libvirt says hold volumes
  for (const auto& a : libvirt.attachments())
    if (!a.instance_uuid().empty()) local.insert(a.instance_uuid());
  if (local.empty()) return false;
  auto count = [&](const v1::SourceSnapshot& s) {
    size_t n = 0;
    for (const auto& a : s.attachments())
      if (local.count(a.instance_uuid())) n++;
    return n;
  };
  return count(before) >= std::max<size_t>(min_before, 1) && count(after) == 0;
}

}  // namespace lunwatch::inventory
