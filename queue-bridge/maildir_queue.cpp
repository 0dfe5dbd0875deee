// sppd-maildir-queue MAILDIR: a qmail-queue stand-in that delivers into one Maildir, for
// `make run`, the tests and sites without qmail. Same interface as qmail-queue(8): message
// on fd 0 (read to EOF first), envelope `F<from>\0T<to>\0...\0` on fd 1, qmail's exit codes
// (11 address too long, 53 write, 54 read, 61 Maildir trouble, 91 envelope format). Runs as
// queue-bridge's user; writes MAILDIR/tmp then renames into MAILDIR/new, and leaves nothing
// behind on failure (the body is spooled in an unnamed file, the draft is unlinked).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/fd.h"

namespace {

constexpr int kExitAddressTooLong = 11;
constexpr int kExitWriteError = 53;
constexpr int kExitReadError = 54;
constexpr int kExitBadConfiguration = 55;
constexpr int kExitHomeTrouble = 61;
constexpr int kExitEnvelopeFormat = 91;
// qmail-queue.c: #define ADDR 1003, counting the NUL.
constexpr size_t kMaxAddress = 1002;
constexpr size_t kBufferSize = 64 * 1024;

// Ends the program with a qmail-queue exit code; caught in main so destructors run first.
struct Failure {
  int code;
  std::string why;  // for the log; empty for envelope errors qmail-queue does not report
};

[[noreturn]] void fail(int code, const std::string& why) { throw Failure{code, why}; }

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// A draft in MAILDIR/tmp: unlinked when it goes out of scope unless delivered.
class Draft {
 public:
  explicit Draft(std::string path) : path_(std::move(path)) {}
  ~Draft() {
    if (!path_.empty()) unlink(path_.c_str());
  }
  Draft(const Draft&) = delete;
  Draft& operator=(const Draft&) = delete;
  void delivered() { path_.clear(); }

 private:
  std::string path_;
};

void write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(kExitWriteError, errno_text("write"));
    data += n;
    size -= static_cast<size_t>(n);
  }
}

// read(2) that retries EINTR; a failure is qmail-queue's 54.
size_t read_some(int fd, char* buffer, size_t size) {
  for (;;) {
    ssize_t n = read(fd, buffer, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) fail(kExitReadError, errno_text("read"));
  }
}

// Copies from in (to EOF) to out without holding more than one buffer of it.
void copy_stream(int in, int out) {
  std::vector<char> buffer(kBufferSize);
  for (;;) {
    size_t n = read_some(in, buffer.data(), buffer.size());
    if (n == 0) return;
    write_all(out, buffer.data(), n);
  }
}

// Byte-at-a-time access to the envelope on fd 1, buffered.
class EnvelopeReader {
 public:
  // The next byte, or -1 at EOF.
  int get() {
    if (pos_ == len_) {
      len_ = read_some(1, buffer_, sizeof(buffer_));
      pos_ = 0;
      if (len_ == 0) return -1;
    }
    return static_cast<unsigned char>(buffer_[pos_++]);
  }
  // One address up to its NUL; EOF before it means the sender gave up (54).
  std::string address() {
    std::string out;
    for (;;) {
      int c = get();
      if (c < 0) fail(kExitReadError, "");
      if (c == 0) return out;
      out.push_back(static_cast<char>(c));
      if (out.size() > kMaxAddress) fail(kExitAddressTooLong, "");
    }
  }

 private:
  char buffer_[4096];
  size_t pos_ = 0;
  size_t len_ = 0;
};

struct Envelope {
  std::string sender;
  std::vector<std::string> recipients;
};

// Parses `F<from>\0` (`T<to>\0`)* `\0` exactly as qmail-queue.c does.
Envelope read_envelope() {
  EnvelopeReader in;
  Envelope envelope;
  int c = in.get();
  if (c < 0) fail(kExitReadError, "");
  if (c != 'F') fail(kExitEnvelopeFormat, "");
  envelope.sender = in.address();
  for (;;) {
    c = in.get();
    if (c < 0) fail(kExitReadError, "");
    if (c == 0) return envelope;
    if (c != 'T') fail(kExitEnvelopeFormat, "");
    envelope.recipients.push_back(in.address());
  }
}

// Maildir's unique name: time.M<usec>P<pid>.<host>, '/' and ':' in host escaped as octal.
std::string unique_name() {
  timeval now{};
  gettimeofday(&now, nullptr);
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) < 0) std::strcpy(host, "localhost");
  std::string safe_host;
  for (const char* p = host; *p; ++p) {
    if (*p == '/') {
      safe_host += "\\057";
    } else if (*p == ':') {
      safe_host += "\\072";
    } else {
      safe_host.push_back(*p);
    }
  }
  return std::to_string(now.tv_sec) + ".M" + std::to_string(now.tv_usec) + "P" +
         std::to_string(getpid()) + "." + safe_host;
}

void ensure_maildir(const std::string& maildir) {
  struct stat st {};
  if (stat(maildir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
    fail(kExitHomeTrouble, "Maildir " + maildir + " is missing or not a directory");
  }
  for (const char* sub : {"tmp", "new", "cur"}) {
    std::string path = maildir + "/" + sub;
    if (mkdir(path.c_str(), 0700) < 0 && errno != EEXIST) {
      fail(kExitHomeTrouble, errno_text("cannot create " + path));
    }
  }
}

// An unnamed file in MAILDIR/tmp holding the message until the envelope is known.
sppd::UniqueFd open_spool(const std::string& maildir, const std::string& name) {
  std::string tmp = maildir + "/tmp";
  sppd::UniqueFd fd(open(tmp.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  // File systems without O_TMPFILE: a named file, unlinked at once.
  std::string path = tmp + "/" + name + ".spool";
  fd.reset(open(path.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
  if (!fd) fail(kExitWriteError, errno_text("cannot create " + path));
  unlink(path.c_str());
  return fd;
}

void deliver(const std::string& maildir) {
  ensure_maildir(maildir);
  std::string name = unique_name();
  sppd::UniqueFd spool = open_spool(maildir, name);
  copy_stream(0, spool.get());
  Envelope envelope = read_envelope();

  std::string draft_path = maildir + "/tmp/" + name;
  sppd::UniqueFd out(open(draft_path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  if (!out) fail(kExitWriteError, errno_text("cannot create " + draft_path));
  Draft draft(draft_path);
  std::string headers = "Return-Path: <" + envelope.sender + ">\n";
  for (const auto& recipient : envelope.recipients) headers += "Delivered-To: " + recipient + "\n";
  write_all(out.get(), headers.data(), headers.size());
  if (lseek(spool.get(), 0, SEEK_SET) < 0) fail(kExitReadError, errno_text("lseek"));
  copy_stream(spool.get(), out.get());
  if (fsync(out.get()) < 0) fail(kExitWriteError, errno_text("fsync " + draft_path));
  if (close(out.release()) < 0) fail(kExitWriteError, errno_text("close " + draft_path));

  std::string final_path = maildir + "/new/" + name;
  if (rename(draft_path.c_str(), final_path.c_str()) < 0) {
    fail(kExitWriteError, errno_text("cannot move the message to " + final_path));
  }
  draft.delivered();
  // The rename is durable only once the directory is: until then, do not claim success.
  std::string new_dir = maildir + "/new";
  sppd::UniqueFd dir(open(new_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || fsync(dir.get()) < 0) {
    int saved = errno;
    unlink(final_path.c_str());
    errno = saved;
    fail(kExitWriteError, errno_text("fsync " + new_dir));
  }
}

}  // namespace

int main(int argc, char** argv) {
  // qmail-queue ignores SIGPIPE too: a write error is an exit code, never a signal. The same
  // for a file size limit, so the draft is still removed.
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);
  if (argc != 2 || argv[1][0] == '\0') {
    const char usage[] = "sppd-maildir-queue: usage: sppd-maildir-queue MAILDIR\n";
    ssize_t ignored = write(2, usage, sizeof(usage) - 1);
    (void)ignored;
    return kExitBadConfiguration;
  }
  try {
    deliver(argv[1]);
  } catch (const Failure& failure) {
    if (!failure.why.empty()) {
      std::string line = "sppd-maildir-queue: " + failure.why + "\n";
      ssize_t ignored = write(2, line.data(), line.size());
      (void)ignored;
    }
    return failure.code;
  }
  return 0;
}
