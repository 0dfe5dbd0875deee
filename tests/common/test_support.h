// Scaffolding shared by the unit tests of the services: a temporary directory, small file
// helpers, a deadline-bounded event loop, and FakeMasterTest, a fixture that stands in for
// the master (the control socketpair a service gets as fd 3) and for one worker channel.
#pragma once

#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/event.h"
#include "common/fd.h"

namespace sppd::test_support {

// A directory under /tmp, removed (with everything in it) by remove() or when it goes.
class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  // Makes /tmp/<prefix>.XXXXXX; false if that failed.
  bool create(const std::string& prefix);
  // Removes it and all it holds; false if that failed.
  bool remove();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text, mode_t mode = 0644);
// The names in a directory, without "." and ".." (empty if it cannot be read).
std::vector<std::string> list_dir(const std::string& path);
// Writes all of data to fd; false as soon as a write fails (EPIPE: the reader gave up).
bool write_all(int fd, const std::string& data);

// Runs the loop in slices until done() or the time is up; false if the time ran out.
bool run_until(event_base* base, const std::function<bool()>& done, double seconds,
               std::chrono::microseconds slice = std::chrono::milliseconds(10));

// The master's side of a service under test: base_, the master's end of the control pair
// (its frames in master_frames_), the service's end in service_control_, and a worker
// channel handed over with kNewClient (its frames in worker_frames_, close in worker_closed_).
class FakeMasterTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // Gives the service (already made from service_control_) a new worker channel.
  void connect_worker();
  // run_until over base_, by default for wait_seconds_.
  bool run_until(const std::function<bool()>& done) { return run_until(done, wait_seconds_); }
  bool run_until(const std::function<bool()>& done, double seconds);
  // The worker's frame that answers request_id with type, or nullptr.
  const ipc::Frame* reply(uint32_t request_id, uint16_t type) const;
  // How many kServed frames the master has received.
  int served_count() const;

  double wait_seconds_ = 10;
  std::chrono::microseconds slice_ = std::chrono::milliseconds(10);
  EventBasePtr base_;
  UniqueFd service_control_;
  std::unique_ptr<ipc::Channel> master_;
  std::unique_ptr<ipc::Channel> worker_;
  std::vector<ipc::Frame> master_frames_;
  std::vector<ipc::Frame> worker_frames_;
  bool worker_closed_ = false;
};

}  // namespace sppd::test_support
