// Tests for pluginrunner/runner as a service: kPluginConfig answers, kServed, malformed worker
// frames, requests of different sessions running side by side, settings from sppd.conf, and
// stopping (SIGTERM's drain, the master going away). Plugins are tiny sh commands.
#include <gtest/gtest.h>

#include "common/config.h"
#include "runner_fixture.h"

namespace sppd::pluginrunner {
namespace {

TEST_F(RunnerTest, AnswersPluginConfig) {
  std::ofstream(home_ + "/control/smtpplugins")
      << "[mail]\nplugins/authrequired\n[rcpt]\nplugins/ifauthskip\n"
         ":plugins/rblspp -r zen.example\n[envelope]\nplugins/never\n";
  start();
  ipc::Frame request(protocol::kPluginConfig, 9);
  request.add("path", "control/smtpplugins");
  worker_->send(std::move(request));
  ASSERT_TRUE(run_until([&] { return reply(9, protocol::kPluginConfigResult) != nullptr; }));
  const ipc::Frame* result = reply(9, protocol::kPluginConfigResult);
  EXPECT_EQ(result->get_or("status", ""), "ok");
  Strings plugins;
  for (auto p : result->all("plugin")) plugins.emplace_back(p);
  EXPECT_EQ(plugins, (Strings{"mplugins/authrequired", "rplugins/ifauthskip",
                              "r:plugins/rblspp -r zen.example"}));
  EXPECT_EQ(served_count(), 1);
}

TEST_F(RunnerTest, MissingPluginFileIsReportedAsMissing) {
  start();
  ipc::Frame request(protocol::kPluginConfig, 3);
  request.add("path", "control/msaplugins");
  worker_->send(std::move(request));
  ASSERT_TRUE(run_until([&] { return reply(3, protocol::kPluginConfigResult) != nullptr; }));
  EXPECT_EQ(reply(3, protocol::kPluginConfigResult)->get_or("status", ""), "missing");
  ipc::Frame directory(protocol::kPluginConfig, 4);
  directory.add("path", "control");
  worker_->send(std::move(directory));
  ASSERT_TRUE(run_until([&] { return reply(4, protocol::kPluginConfigResult) != nullptr; }));
  EXPECT_EQ(reply(4, protocol::kPluginConfigResult)->get_or("status", ""), "error");
  EXPECT_NE(reply(4, protocol::kPluginConfigResult)->get_or("error", ""), "");
}

TEST_F(RunnerTest, ServedOnceAfterTheFirstAnswer) {
  start();
  run_until([] { return false; }, 0.05);
  EXPECT_EQ(served_count(), 0);
  EXPECT_EQ(commands(run('c', {})), Strings{});  // no plugins: answered at once
  EXPECT_EQ(commands(run('c', {":echo HX"})), (Strings{"HX"}));
  run_until([] { return false; }, 0.05);
  EXPECT_EQ(served_count(), 1);
}

TEST_F(RunnerTest, MalformedFramesCloseTheWorkerChannel) {
  std::vector<std::function<ipc::Frame()>> bad = {
      [] { return ipc::Frame(protocol::kQueueOpen, 1); },
      [] {
        ipc::Frame f(protocol::kPluginRun, 1);
        f.add("session", "s1").add("plugin", ":echo HX");
        return f;
      },
      [] {
        ipc::Frame f(protocol::kPluginRun, 1);
        f.add("section", "x").add("session", "s1");
        return f;
      },
      [] {
        ipc::Frame f(protocol::kPluginRun, 1);
        f.add("section", "m").add("session", "s1").add("env", "NOEQUALS");
        return f;
      },
      [] {
        ipc::Frame f(protocol::kPluginRun, 1);
        f.add("section", "m").add("session", "s1").add("plugin", "");
        return f;
      },
      [] { return ipc::Frame(protocol::kPluginConfig, 1); },
  };
  for (auto& make : bad) {
    worker_frames_.clear();
    worker_closed_ = false;
    runner_.reset();
    auto [master_end, runner_end] = ipc::make_socketpair();
    master_ = std::make_unique<ipc::Channel>(
        base_.get(), std::move(master_end), [](ipc::Frame&&) {}, [](const std::string&) {});
    service_control_ = std::move(runner_end);
    start();
    worker_->send(make());
    EXPECT_TRUE(run_until([&] { return worker_closed_; }, 2));
    EXPECT_TRUE(worker_frames_.empty());
  }
}

TEST_F(RunnerTest, DuplicateRequestIdIsMalformed) {
  start();
  send_run(5, 'm', {":sleep 0.3; echo HX"}, {});
  send_run(5, 'm', {":echo HY"}, {});
  EXPECT_TRUE(run_until([&] { return worker_closed_; }, 2));
}

TEST_F(RunnerTest, SlowPluginDoesNotDelayOtherSessions) {
  start();
  auto began = Clock::now();
  send_run(1, 'r', {":sleep 0.6; echo Hslow"}, {}, "slow");
  for (uint32_t id = 2; id <= 11; ++id) send_run(id, 'r', {":echo Hfast"}, {}, "fast");
  ASSERT_TRUE(run_until([&] {
    for (uint32_t id = 2; id <= 11; ++id) {
      if (!reply(id, protocol::kPluginResult)) return false;
    }
    return true;
  }));
  EXPECT_LT(Clock::now() - began, std::chrono::milliseconds(500));
  EXPECT_EQ(reply(1, protocol::kPluginResult), nullptr);
  ASSERT_TRUE(run_until([&] { return reply(1, protocol::kPluginResult) != nullptr; }));
  EXPECT_EQ(commands(reply(1, protocol::kPluginResult)), (Strings{"Hslow"}));
  EXPECT_EQ(commands(reply(11, protocol::kPluginResult)), (Strings{"Hfast"}));
}

TEST_F(RunnerTest, WorkerGoingAwayKillsItsPlugins) {
  start();
  std::string pid_file = home_ + "/plugin.pid";
  send_run(1, 'm', {":echo $$ > " + pid_file + "; exec sleep 30"}, {});
  ASSERT_TRUE(run_until([&] { return !read_file(pid_file).empty(); }));
  pid_t plugin = std::atoi(read_file(pid_file).c_str());
  worker_.reset();
  ASSERT_TRUE(run_until([&] { return runner_->in_flight() == 0; }));
  run_until([] { return false; }, 0.05);  // the abandoned request is destroyed next pass
  EXPECT_TRUE(run_until([&] {
    std::string stat = read_file("/proc/" + std::to_string(plugin) + "/stat");
    return stat.empty() || stat.find(") Z") != std::string::npos;
  }));
}

TEST_F(RunnerTest, DrainFinishesRunningRequestsAndRefusesNewOnes) {
  start();
  send_run(1, 'm', {":sleep 0.3; echo HX"}, {});
  run_until([] { return false; }, 0.05);
  runner_->service().drain("test");
  send_run(2, 'm', {":echo HY"}, {});
  auto began = Clock::now();
  runner_->service().run();  // returns once nothing runs
  EXPECT_LT(Clock::now() - began, std::chrono::seconds(3));
  run_until([] { return false; }, 0.05);
  EXPECT_EQ(commands(reply(1, protocol::kPluginResult)), (Strings{"HX"}));
  EXPECT_EQ(failure(reply(2, protocol::kPluginResult)),
            "qmail-spp failure: plugin runner is stopping (#4.3.0)");
}

TEST_F(RunnerTest, MasterGoingAwayDrains) {
  start();
  run_until([] { return false; }, 0.05);
  master_.reset();
  auto began = Clock::now();
  runner_->service().run();
  EXPECT_LT(Clock::now() - began, std::chrono::seconds(2));
}

constexpr const char* kListener = "[listener smtp]\naddress = 127.0.0.1:2525\n";

TEST(RunnerSettings, FromConfig) {
  config::Config config = config::parse(
      "qmail_home = /var/qmail\n[service pluginrunner]\nuser = qmaild\nprocesses = 3\n"
      "plugin_timeout = 0\nmax_output = 1000\n" +
          std::string(kListener),
      "/etc/sppd/sppd.conf");
  Settings settings = settings_from(config);
  EXPECT_EQ(settings.run.qmail_home, "/var/qmail");
  EXPECT_EQ(settings.user, "qmaild");
  EXPECT_EQ(settings.run.plugin_timeout.count(), 0);
  EXPECT_EQ(settings.run.max_output, 1000u);

  Settings defaults = settings_from(
      config::parse("qmail_home = /var/qmail\n" + std::string(kListener), "/etc/sppd.conf"));
  EXPECT_EQ(defaults.run.plugin_timeout, std::chrono::seconds(300));
  EXPECT_EQ(defaults.run.max_output, 65536u);
}

}  // namespace
}  // namespace sppd::pluginrunner
