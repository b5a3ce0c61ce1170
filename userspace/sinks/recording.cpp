#include "sinks/recording.h"

#include <unistd.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "common/safe_file.h"

namespace lunwatch::sinks {

Result<std::unique_ptr<RecordWriter>> RecordWriter::open(const std::string& path) {
  auto fd = open_truncate_safe(path);  // O_NOFOLLOW, 0600, ours
  if (!fd) return make_error(Errc::kIo, "cannot write recording: " + fd.error().message);
  std::FILE* f = ::fdopen(fd.value(), "wb");
  if (!f) {
    ::close(fd.value());
    return make_error(Errc::kIo, "cannot write recording " + path + ": " + std::strerror(errno));
  }
  std::fwrite(kRecordingMagic, 1, sizeof(kRecordingMagic) - 1, f);
  return std::unique_ptr<RecordWriter>(new RecordWriter(f));
}

RecordWriter::~RecordWriter() {
  if (f_) std::fclose(f_);
}

bool RecordWriter::write(const v1::Event& ev) {
  std::string body;
  if (!ev.SerializeToString(&body)) return false;
  std::string out;
  {
    google::protobuf::io::StringOutputStream s(&out);
    google::protobuf::io::CodedOutputStream c(&s);
    c.WriteVarint32(static_cast<uint32_t>(body.size()));
  }
  out += body;
  bool ok = std::fwrite(out.data(), 1, out.size(), f_) == out.size();
  std::fflush(f_);
  if (ok) written_++;
  return ok;
}

Result<uint64_t> read_recording(const std::string& path, const std::function<void(v1::Event&&)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::kIo, "cannot read recording " + path);
  std::string magic(sizeof(kRecordingMagic) - 1, '\0');
  in.read(magic.data(), static_cast<std::streamsize>(magic.size()));
  if (magic != kRecordingMagic) return make_error(Errc::kParse, path + " is not a lunwatch recording (bad magic)");
  google::protobuf::io::IstreamInputStream zs(&in);
  google::protobuf::io::CodedInputStream cs(&zs);
  cs.SetTotalBytesLimit(INT32_MAX);
  uint64_t n = 0;
  while (true) {
    uint32_t len = 0;
    // The end is clean only between records: a file cut inside a length
    // varint is truncated, not complete.
    const void* peek = nullptr;
    int avail = 0;
    if (!cs.GetDirectBufferPointer(&peek, &avail)) break;  // clean end
    if (!cs.ReadVarint32(&len))
      return make_error(Errc::kTruncated, "recording truncated in the length of record " + std::to_string(n));
    if (len > (64u << 20))
      return make_error(Errc::kParse, "record " + std::to_string(n) + " claims " + std::to_string(len) + " bytes");
    std::string body;
    if (!cs.ReadString(&body, static_cast<int>(len)))
      return make_error(Errc::kTruncated, "recording truncated in record " + std::to_string(n));
    v1::Event ev;
    if (!ev.ParseFromString(body)) return make_error(Errc::kParse, "record " + std::to_string(n) + " is corrupt");
    fn(std::move(ev));
    n++;
  }
  return n;
}

}  // namespace lunwatch::sinks
