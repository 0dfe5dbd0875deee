// RunnerTest: an in-process pluginrunner Runner driven through real channels, as the master
// and one worker would, in a temporary qmail home where tests write small sh plugins. Shared
// by plugin_run_test.cpp (what plugins see and what comes back) and runner_test.cpp (the
// service: config requests, kServed, malformed frames, concurrency, draining).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/protocol.h"
#include "pluginrunner/runner.h"

namespace sppd::pluginrunner {

using Clock = std::chrono::steady_clock;
using Strings = std::vector<std::string>;

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // As main() does: plugins must inherit SIGPIPE ignored.
    signal(SIGPIPE, SIG_IGN);
    char tmpl[] = "/tmp/sppd-pluginrunner-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    home_ = tmpl;
    ASSERT_EQ(mkdir((home_ + "/plugins").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((home_ + "/control").c_str(), 0755), 0);
    base_.reset(event_base_new());
    auto [master_end, runner_end] = ipc::make_socketpair();
    runner_control_ = std::move(runner_end);
    master_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(master_end),
        [this](ipc::Frame&& f) { master_frames_.push_back(std::move(f)); },
        [](const std::string&) {});
    settings_.run.qmail_home = home_;
    settings_.run.plugin_timeout = std::chrono::seconds(10);
  }

  void TearDown() override {
    worker_.reset();
    runner_.reset();
    master_.reset();
    std::string command = "rm -rf '" + home_ + "'";
    ASSERT_EQ(system(command.c_str()), 0);
  }

  void start() {
    runner_ = std::make_unique<Runner>(base_.get(), home_ + "/sppd.conf", settings_,
                                       std::move(runner_control_));
    auto [worker_end, runner_end] = ipc::make_socketpair();
    ipc::Frame hello(protocol::kNewClient, 0);
    hello.add("worker_pid", "4711");
    hello.fd = std::move(runner_end);
    master_->send(std::move(hello));
    worker_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(worker_end),
        [this](ipc::Frame&& f) { worker_frames_.push_back(std::move(f)); },
        [this](const std::string&) { worker_closed_ = true; });
  }

  // A plugin as an sh script in $home/plugins; returns its config line (relative path).
  std::string script(const std::string& name, const std::string& body) {
    std::string path = home_ + "/plugins/" + name;
    std::ofstream(path, std::ios::binary) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), 0755);
    return "plugins/" + name;
  }

  // Runs the loop in small slices until done() or the time is up.
  bool run_until(const std::function<bool()>& done, double seconds = 5) {
    auto deadline = Clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (!done()) {
      if (Clock::now() > deadline) return false;
      timeval slice{0, 5000};
      event_base_loopexit(base_.get(), &slice);
      event_base_dispatch(base_.get());
    }
    return true;
  }

  const ipc::Frame* reply(uint32_t request_id, uint16_t type) const {
    for (const auto& f : worker_frames_) {
      if (f.request_id == request_id && f.type == type) return &f;
    }
    return nullptr;
  }

  void send_run(uint32_t request_id, char section, const Strings& plugins, const Strings& env,
                const std::string& session = "s1") {
    ipc::Frame frame(protocol::kPluginRun, request_id);
    frame.add("section", std::string(1, section)).add("session", session);
    for (const auto& plugin : plugins) frame.add("plugin", plugin);
    for (const auto& entry : env) frame.add("env", entry);
    worker_->send(std::move(frame));
  }

  // One kPluginRun, answered: its kPluginResult (nullptr if none came in time).
  const ipc::Frame* run(char section, const Strings& plugins, const Strings& env = {},
                        double seconds = 5) {
    uint32_t id = next_id_++;
    send_run(id, section, plugins, env);
    run_until([&] { return reply(id, protocol::kPluginResult) != nullptr; }, seconds);
    return reply(id, protocol::kPluginResult);
  }

  static Strings commands(const ipc::Frame* frame) {
    Strings out;
    if (!frame) return out;
    for (auto c : frame->all("command")) out.emplace_back(c);
    return out;
  }
  static std::string failure(const ipc::Frame* frame) {
    return frame ? frame->get_or("failure", "") : "(no result)";
  }

  int served_count() const {
    int n = 0;
    for (const auto& f : master_frames_) n += f.type == protocol::kServed;
    return n;
  }

  std::string home_;
  Settings settings_;
  EventBasePtr base_;
  UniqueFd runner_control_;
  std::unique_ptr<ipc::Channel> master_;
  std::unique_ptr<Runner> runner_;
  std::unique_ptr<ipc::Channel> worker_;
  std::vector<ipc::Frame> master_frames_;
  std::vector<ipc::Frame> worker_frames_;
  bool worker_closed_ = false;
  uint32_t next_id_ = 1;
};

}  // namespace sppd::pluginrunner
