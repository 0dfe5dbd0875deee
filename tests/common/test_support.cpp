// The shared test scaffolding declared in test_support.h: temporary directories, file
// helpers, the sliced event loop and the fake master's control and worker channels.
#include "tests/common/test_support.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/protocol.h"

namespace sppd::test_support {

using Clock = std::chrono::steady_clock;

TempDir::~TempDir() { remove(); }

bool TempDir::create(const std::string& prefix) {
  std::string tmpl = "/tmp/" + prefix + ".XXXXXX";
  if (!mkdtemp(tmpl.data())) return false;
  path_ = tmpl;
  return true;
}

bool TempDir::remove() {
  if (path_.empty()) return true;
  std::string command = "rm -rf '" + path_ + "'";
  bool removed = system(command.c_str()) == 0;
  path_.clear();
  return removed;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary) << text;
  chmod(path.c_str(), mode);
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (!dir) return names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  return names;
}

bool write_all(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool run_until(event_base* base, const std::function<bool()>& done, double seconds,
               std::chrono::microseconds slice) {
  auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
  while (!done()) {
    if (Clock::now() > deadline) return false;
    timeval tv{static_cast<time_t>(slice.count() / 1000000),
               static_cast<suseconds_t>(slice.count() % 1000000)};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
  return true;
}

void FakeMasterTest::SetUp() {
  // As the services' main() does: children must inherit SIGPIPE ignored.
  signal(SIGPIPE, SIG_IGN);
  base_.reset(event_base_new());
  auto [master_end, service_end] = ipc::make_socketpair();
  service_control_ = std::move(service_end);
  master_ = std::make_unique<ipc::Channel>(
      base_.get(), std::move(master_end),
      [this](ipc::Frame&& f) { master_frames_.push_back(std::move(f)); },
      [](const std::string&) {});
}

void FakeMasterTest::connect_worker() {
  auto [worker_end, service_end] = ipc::make_socketpair();
  ipc::Frame hello(protocol::kNewClient, 0);
  hello.add("worker_pid", "4711");
  hello.fd = std::move(service_end);
  master_->send(std::move(hello));
  worker_closed_ = false;
  worker_frames_.clear();
  worker_ = std::make_unique<ipc::Channel>(
      base_.get(), std::move(worker_end),
      [this](ipc::Frame&& f) { worker_frames_.push_back(std::move(f)); },
      [this](const std::string&) { worker_closed_ = true; });
}

bool FakeMasterTest::run_until(const std::function<bool()>& done, double seconds) {
  return test_support::run_until(base_.get(), done, seconds, slice_);
}

const ipc::Frame* FakeMasterTest::reply(uint32_t request_id, uint16_t type) const {
  for (const auto& f : worker_frames_) {
    if (f.request_id == request_id && f.type == type) return &f;
  }
  return nullptr;
}

int FakeMasterTest::served_count() const {
  int n = 0;
  for (const auto& f : master_frames_) n += f.type == protocol::kServed;
  return n;
}

}  // namespace sppd::test_support
