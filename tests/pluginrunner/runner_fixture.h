// RunnerTest: an in-process pluginrunner Runner driven through real channels, as the master
// and one worker would, in a temporary qmail home where tests write small sh plugins. Shared
// by plugin_run_test.cpp (what plugins see and what comes back) and runner_test.cpp (the
// service: config requests, kServed, malformed frames, concurrency, draining).
#pragma once

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/protocol.h"
#include "pluginrunner/runner.h"
#include "tests/common/test_support.h"

namespace sppd::pluginrunner {

using Clock = std::chrono::steady_clock;
using Strings = std::vector<std::string>;

using test_support::read_file;
using test_support::write_file;

class RunnerTest : public test_support::FakeMasterTest {
 protected:
  void SetUp() override {
    // As main() does: plugins must inherit SIGPIPE ignored (FakeMasterTest sees to it).
    FakeMasterTest::SetUp();
    wait_seconds_ = 5;
    slice_ = std::chrono::milliseconds(5);
    ASSERT_TRUE(temp_.create("sppd-pluginrunner-test"));
    home_ = temp_.path();
    ASSERT_EQ(mkdir((home_ + "/plugins").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((home_ + "/control").c_str(), 0755), 0);
    settings_.run.qmail_home = home_;
    settings_.run.plugin_timeout = std::chrono::seconds(10);
  }

  void TearDown() override {
    worker_.reset();
    runner_.reset();
    master_.reset();
    ASSERT_TRUE(temp_.remove());
  }

  void start() {
    runner_ = std::make_unique<Runner>(base_.get(), home_ + "/sppd.conf", settings_,
                                       std::move(service_control_));
    connect_worker();
  }

  // A plugin as an sh script in $home/plugins; returns its config line (relative path).
  std::string script(const std::string& name, const std::string& body) {
    std::string path = home_ + "/plugins/" + name;
    write_file(path, "#!/bin/sh\n" + body + "\n", 0755);
    return "plugins/" + name;
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

  test_support::TempDir temp_;
  std::string home_;
  Settings settings_;
  std::unique_ptr<Runner> runner_;
  uint32_t next_id_ = 1;
};

}  // namespace sppd::pluginrunner
