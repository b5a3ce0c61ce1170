// lunwatch lab: a stand-in for Nova's qemu process.
//
// Built by scripts/lab into $LAB_CACHE/bin/qemu-system-x86_64 so that the kernel's comm
// is "qemu-system-x86" and argv looks like libvirt's:
//   qemu-system-x86_64 -name guest=instance-0000000a,debug-threads=on -uuid UUID
//       -drive file=/dev/dm-0,format=raw,if=none,cache=none[,...] [-drive ...]
//       [-lab-engines psync,libaio,io_uring] [-lab-interval-ms 200] [-lab-write 0|1]
//       [-lab-count N] [-lab-heartbeat-s 5] [-lab-open-retry-s N]
// It opens every drive once with O_RDWR|O_DIRECT and keeps the descriptors (as qemu
// does), then loops: for each drive, with the next engine in turn, read 4 KiB at
// offset 0 and report the volume marker found there (the text up to the first
// whitespace/NUL, e.g. VOLUME-A-MARKER); optionally write 4 KiB at 1 MiB.
// Output (stdout, one line each): a line whenever (drive, result, marker) changes,
// a heartbeat with counters every few seconds, and the totals on SIGTERM/SIGINT:
//   t=1234 wall_ms=1700000000123 mono_ms=45678 drive=/dev/dm-0 engine=libaio op=read ok marker=VOLUME-A-MARKER n=17
//   t=1234 wall_ms=.. mono_ms=.. drive=/dev/dm-0 engine=psync op=read err=5 (Input/output error) n=18
// (t: ms since start; wall_ms: CLOCK_REALTIME; mono_ms: CLOCK_MONOTONIC; submit_mono_ms:
// when that read was submitted (a read the guard let through may then block on a dead
// path: its line comes late, its submission says when the refusals ended); err: the errno,
//  e.g. 1 (Operation not permitted) when lunwatch's guard refuses the I/O)
//   total t=.. drive=/dev/dm-0 reads=40 ok=37 read_errors=3 writes=40 write_errors=1 last=ok
//   markers=VOLUME-A-MARKER@psync:13,VOLUME-A-MARKER@libaio:12,...
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <liburing.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum engine { E_PSYNC, E_LIBAIO, E_URING, E_MAX };
static const char* engine_name[E_MAX] = {"psync", "libaio", "io_uring"};

#define BS 4096
#define MAX_DRIVES 64
#define MAX_MARKERS 24

struct drive {
  char path[256];
  int fd;
  long reads, read_errors, writes, write_errors, read_denied, write_denied;
  char last[160];
  struct {
    char name[96];
    long count;
  } markers[MAX_MARKERS];
};

static struct drive drives[MAX_DRIVES];
static int ndrives;
static volatile sig_atomic_t stop_flag;
static struct timespec t0;
static io_context_t aio_ctx;
static struct io_uring ring;
static int have_aio, have_uring;

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
}

// Absolute clocks for the lab's latency measures: wall (to compare with an alert's
// unix_ms) and CLOCK_MONOTONIC (the clock of lunwatch's event ts_ns), in ms.
static long long clock_ms(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void on_signal(int sig) {
  (void)sig;
  stop_flag = 1;
}

// Returns bytes transferred or -errno.
static long do_io(enum engine e, int fd, void* buf, off_t off, int write) {
  if (e == E_PSYNC) {
    ssize_t r = write ? pwrite(fd, buf, BS, off) : pread(fd, buf, BS, off);
    return r < 0 ? -errno : r;
  }
  if (e == E_LIBAIO) {
    struct iocb cb, *cbs[1] = {&cb};
    struct io_event ev;
    if (write)
      io_prep_pwrite(&cb, fd, buf, BS, off);
    else
      io_prep_pread(&cb, fd, buf, BS, off);
    int r = io_submit(aio_ctx, 1, cbs);
    if (r != 1) return r < 0 ? r : -EIO;
    do r = io_getevents(aio_ctx, 1, 1, &ev, NULL);
    while (r == -EINTR);
    if (r != 1) return r < 0 ? r : -EIO;
    return (long)ev.res;
  }
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  struct io_uring_cqe* cqe;
  if (!sqe) return -EBUSY;
  if (write)
    io_uring_prep_write(sqe, fd, buf, BS, off);
  else
    io_uring_prep_read(sqe, fd, buf, BS, off);
  int r = io_uring_submit(&ring);
  if (r < 0) return r;
  do r = io_uring_wait_cqe(&ring, &cqe);
  while (r == -EINTR);
  if (r < 0) return r;
  long res = cqe->res;
  io_uring_cqe_seen(&ring, cqe);
  return res;
}

static void marker_of(const char* buf, char* out, size_t n) {
  size_t i = 0;
  while (i + 1 < n && i < 63 && buf[i] > ' ' && buf[i] < 127) {
    out[i] = buf[i];
    i++;
  }
  out[i] = 0;
  if (i == 0) snprintf(out, n, "(none)");
}

static void count_marker(struct drive* d, const char* m) {
  for (int i = 0; i < MAX_MARKERS; i++) {
    if (d->markers[i].name[0] == 0) {
      snprintf(d->markers[i].name, sizeof d->markers[i].name, "%s", m);
      d->markers[i].count = 1;
      return;
    }
    if (strcmp(d->markers[i].name, m) == 0) {
      d->markers[i].count++;
      return;
    }
  }
}

static void print_totals(const char* tag) {
  for (int i = 0; i < ndrives; i++) {
    struct drive* d = &drives[i];
    printf("%s t=%ld drive=%s reads=%ld ok=%ld read_errors=%ld writes=%ld write_errors=%ld last=%s markers=", tag,
           now_ms(), d->path, d->reads, d->reads - d->read_errors, d->read_errors, d->writes, d->write_errors,
           strncmp(d->last, "ok", 2) ? "err" : "ok");
    int any = 0;
    for (int j = 0; j < MAX_MARKERS && d->markers[j].name[0]; j++) {
      printf("%s%s:%ld", any ? "," : "", d->markers[j].name, d->markers[j].count);
      any = 1;
    }
    printf("%s read_denied=%ld write_denied=%ld\n", any ? "" : "-", d->read_denied, d->write_denied);
  }
  fflush(stdout);
}

static void usage(void) {
  fprintf(stderr,
          "usage: qemu-system-x86_64 -name guest=NAME[,..] -uuid UUID -drive file=DEV[,..]... "
          "[-lab-engines psync,libaio,io_uring] [-lab-interval-ms N] [-lab-write 0|1] [-lab-read 0|1] "
          "[-lab-count N] [-lab-heartbeat-s N]\n");
  exit(2);
}

int main(int argc, char** argv) {
  int engines[E_MAX], nengines = 0, interval_ms = 200, do_write = 1, do_read = 1, heartbeat_s = 5, open_retry_s = 0;
  long count = 0;
  const char *name = "?", *uuid = "?";
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) usage();
    if (!strcmp(a, "-name"))
      name = v;
    else if (!strcmp(a, "-uuid"))
      uuid = v;
    else if (!strcmp(a, "-drive")) {
      const char* f = strstr(v, "file=");
      if (!f || ndrives == MAX_DRIVES) usage();
      f += 5;
      size_t n = strcspn(f, ",");
      struct drive* d = &drives[ndrives++];
      snprintf(d->path, sizeof d->path, "%.*s", (int)n, f);
    } else if (!strcmp(a, "-lab-engines")) {
      char *s = strdup(v), *tok, *save;
      for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = 0;
        for (int e = 0; e < E_MAX; e++)
          if (!strcmp(tok, engine_name[e]) && nengines < E_MAX) engines[nengines++] = e, found = 1;
        if (!found) usage();
      }
      free(s);
    } else if (!strcmp(a, "-lab-interval-ms"))
      interval_ms = atoi(v);
    else if (!strcmp(a, "-lab-write"))
      do_write = atoi(v);
    else if (!strcmp(a, "-lab-read"))
      do_read = atoi(v);
    else if (!strcmp(a, "-lab-count"))
      count = atol(v);
    else if (!strcmp(a, "-lab-heartbeat-s"))
      heartbeat_s = atoi(v);
    else if (!strcmp(a, "-lab-open-retry-s"))
      open_retry_s = atoi(v);
    // other qemu-looking options (-machine, -m, ...) are accepted and ignored
    i++;
  }
  if (ndrives == 0) usage();
  if (nengines == 0)
    for (int e = 0; e < E_MAX; e++) engines[nengines++] = e;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  setvbuf(stdout, NULL, _IOLBF, 0);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  for (int e = 0; e < nengines; e++) {
    if (engines[e] == E_LIBAIO && !have_aio) {
      int r = io_setup(4, &aio_ctx);
      if (r < 0) {
        fprintf(stderr, "io_setup: %s\n", strerror(-r));
        return 1;
      }
      have_aio = 1;
    }
    if (engines[e] == E_URING && !have_uring) {
      int r = io_uring_queue_init(4, &ring, 0);
      if (r < 0) {
        fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-r));
        return 1;
      }
      have_uring = 1;
    }
  }
  for (int i = 0; i < ndrives; i++) {
    // -lab-open-retry-s N: retry an open the guard refuses (EPERM/EACCES) for up to
    // N seconds, reporting the refusal once and when the open went through
    long deadline = now_ms() + open_retry_s * 1000L;
    int denied = 0;
    for (;;) {
      drives[i].fd = open(drives[i].path, O_RDWR | O_DIRECT | O_CLOEXEC);
      if (drives[i].fd >= 0 || (errno != EPERM && errno != EACCES) || now_ms() >= deadline || stop_flag) break;
      if (!denied++)
        printf("open-denied t=%ld wall_ms=%lld mono_ms=%lld drive=%s err=%d (%s)\n", now_ms(), clock_ms(CLOCK_REALTIME),
               clock_ms(CLOCK_MONOTONIC), drives[i].path, errno, strerror(errno));
      struct timespec ts = {0, 50 * 1000000L};
      nanosleep(&ts, NULL);
    }
    if (denied && drives[i].fd >= 0)
      printf("open-allowed t=%ld wall_ms=%lld mono_ms=%lld drive=%s denied_opens=%d\n", now_ms(),
             clock_ms(CLOCK_REALTIME), clock_ms(CLOCK_MONOTONIC), drives[i].path, denied);
    if (drives[i].fd < 0) {
      fprintf(stderr, "open %s: %s\n", drives[i].path, strerror(errno));
      return 1;
    }
  }
  void *rbuf, *wbuf;
  if (posix_memalign(&rbuf, BS, BS) || posix_memalign(&wbuf, BS, BS)) return 1;
  memset(wbuf, 0, BS);
  snprintf(wbuf, BS, "written-by %s uuid=%s pid=%d\n", name, uuid, getpid());
  printf("start t=%ld pid=%d name=%s uuid=%s drives=%d engines=", now_ms(), getpid(), name, uuid, ndrives);
  for (int e = 0; e < nengines; e++) printf("%s%s", e ? "," : "", engine_name[engines[e]]);
  printf("\n");
  fflush(stdout);

  long iter = 0, last_hb = now_ms();
  int ei = 0;
  while (!stop_flag && (count == 0 || iter < count)) {
    for (int i = 0; i < ndrives && !stop_flag; i++) {
      struct drive* d = &drives[i];
      enum engine e = engines[ei];
      char line[160], m[64];
      memset(rbuf, 0, BS);
      long long submit_ms = clock_ms(CLOCK_MONOTONIC);
      if (!do_read) goto write; /* -lab-read 0: writes only, each result logged as it changes */
      long r = do_io(e, d->fd, rbuf, 0, 0);
      d->reads++;
      if (r == BS) {
        char me[96];
        marker_of(rbuf, m, sizeof m);
        snprintf(me, sizeof me, "%s@%s", m, engine_name[e]);
        count_marker(d, me);
        snprintf(line, sizeof line, "ok marker=%s", m);
      } else {
        d->read_errors++;
        if (r == -EPERM || r == -EACCES) d->read_denied++;
        snprintf(line, sizeof line, "err=%ld (%s)", r < 0 ? -r : 0, r < 0 ? strerror(-r) : "short read");
      }
      if (strcmp(line, d->last)) {
        printf("t=%ld wall_ms=%lld mono_ms=%lld submit_mono_ms=%lld drive=%s engine=%s op=read %s n=%ld\n", now_ms(),
               clock_ms(CLOCK_REALTIME), clock_ms(CLOCK_MONOTONIC), submit_ms, d->path, engine_name[e], line, d->reads);
        snprintf(d->last, sizeof d->last, "%s", line);
      }
    write:
      if (do_write) {
        submit_ms = clock_ms(CLOCK_MONOTONIC);
        long w = do_io(e, d->fd, wbuf, 1 << 20, 1);
        d->writes++;
        if (w != BS) d->write_errors++;
        if (w == -EPERM || w == -EACCES) d->write_denied++;
        if (!do_read) {
          if (w == BS)
            snprintf(line, sizeof line, "ok");
          else
            snprintf(line, sizeof line, "err=%ld (%s)", w < 0 ? -w : 0, w < 0 ? strerror(-w) : "short write");
          if (strcmp(line, d->last)) {
            printf("t=%ld wall_ms=%lld mono_ms=%lld submit_mono_ms=%lld drive=%s engine=%s op=write %s n=%ld\n",
                   now_ms(), clock_ms(CLOCK_REALTIME), clock_ms(CLOCK_MONOTONIC), submit_ms, d->path, engine_name[e],
                   line, d->writes);
            snprintf(d->last, sizeof d->last, "%s", line);
          }
        }
      }
    }
    ei = (ei + 1) % nengines;
    iter++;
    if (heartbeat_s > 0 && now_ms() - last_hb >= heartbeat_s * 1000L) {
      print_totals("heartbeat");
      last_hb = now_ms();
    }
    if (interval_ms > 0 && !stop_flag && (count == 0 || iter < count)) {
      struct timespec ts = {interval_ms / 1000, (interval_ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  print_totals("total");
  return 0;
}
