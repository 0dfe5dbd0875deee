// Parser for sppd.conf (format in config.h). Pure: reads one file, no side effects.
#include "common/config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>

#include <fstream>
#include <set>
#include <sstream>

namespace sppd::config {
namespace {

const std::set<std::string> kGlobalKeys = {"qmail_home", "drain_timeout", "log_level"};
const std::set<std::string> kListenerKeys = {"address",
                                             "control_dir",
                                             "tcprules",
                                             "remote_host_lookup",
                                             "remote_host_timeout",
                                             "local_host",
                                             "databytes",
                                             "timeoutsmtpd",
                                             "maxcmdlen",
                                             "maxaddrlen",
                                             "maxhops",
                                             "tls_certificate",
                                             "tls_key",
                                             "implicit_tls",
                                             "require_tls",
                                             "require_auth",
                                             "tls_handshake_timeout",
                                             "rbl",
                                             "rbl_when",
                                             "max_connections_per_ip",
                                             "max_connection_rate_per_ip",
                                             "connection_rate_window",
                                             "realrcptto",
                                             "clamd_unavailable",
                                             "clamd_timeout"};
// Keys every service accepts, then the ones only some services know.
const std::set<std::string> kCommonServiceKeys = {"user", "processes"};
const std::map<std::string, std::set<std::string>> kServiceKeys = {
    {"smtpd", {"chroot", "sessions_per_worker", "max_use"}},
    {"queue-bridge", {"qmail_queue", "queue_timeout", "error_fd", "clamd_connect_timeout"}},
    {"dnsbl-cache",
     {"resolver", "chroot", "lookup_timeout", "socket", "callback_port", "callback_timeout"}},
    {"pluginrunner", {"plugin_timeout", "max_output"}},
    {"authd",
     {"checkpassword", "check_timeout", "concurrency", "cram_order", "max_failures",
      "failure_window"}},
};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

struct Parser {
  std::string path;
  std::string dir;
  int line = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(path + ":" + std::to_string(line) + ": " + what);
  }
  std::string absolute(const std::string& p) const {
    if (p.empty() || p[0] == '/') return p;
    return dir + "/" + p;
  }
  long number(const std::string& key, const std::string& value, long min, long max) const {
    char* end = nullptr;
    errno = 0;
    long v = strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno != 0) fail(key + " must be a whole number");
    if (v < min || v > max) {
      fail(key + " must be between " + std::to_string(min) + " and " + std::to_string(max));
    }
    return v;
  }
  bool boolean(const std::string& key, const std::string& value) const {
    if (value == "yes" || value == "true" || value == "1") return true;
    if (value == "no" || value == "false" || value == "0") return false;
    fail(key + " must be yes or no");
  }
};

std::string normalize(const std::string& p) {
  // Collapse "dir/../x" so logs and /proc/PID/root comparisons show plain paths.
  char resolved[PATH_MAX];
  if (realpath(p.c_str(), resolved)) return resolved;
  return p;
}

// A socket that may not exist yet: its directory normalized when that exists.
std::string socket_path(const std::string& p) {
  size_t slash = p.rfind('/');
  if (slash == std::string::npos || slash == 0) return p;
  return normalize(p.substr(0, slash)) + p.substr(slash);
}

// sockaddr_un's sun_path holds 108 bytes with the NUL.
constexpr size_t kMaxSocketPath = 108;

}  // namespace

std::string Service::get(const std::string& key, const std::string& fallback) const {
  auto it = settings.find(key);
  return it == settings.end() ? fallback : it->second;
}

long Service::get_long(const std::string& key, long fallback) const {
  auto it = settings.find(key);
  return it == settings.end() ? fallback : strtol(it->second.c_str(), nullptr, 10);
}

const Service& Config::service(const std::string& name) const {
  auto it = services.find(name);
  if (it == services.end()) throw ConfigError(path + ": no [service " + name + "] section");
  return it->second;
}

const Listener* Config::listener(const std::string& name) const {
  for (const auto& l : listeners) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

std::string dnsbl_socket(const Config& config) {
  return config.service("dnsbl-cache").get("socket", kDefaultDnsblSocket);
}

bool split_address(const std::string& address, std::string* host, int* port) {
  std::string h, p;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find("]:");
    if (close == std::string::npos) return false;
    h = address.substr(1, close - 1);
    p = address.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, h.c_str(), &a6) != 1) return false;
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    h = address.substr(0, colon);
    p = address.substr(colon + 1);
    in_addr a4;
    if (inet_pton(AF_INET, h.c_str(), &a4) != 1) return false;
  }
  char* end = nullptr;
  long n = strtol(p.c_str(), &end, 10);
  if (p.empty() || *end != '\0' || n < 0 || n > 65535) return false;
  *host = h;
  *port = static_cast<int>(n);
  return true;
}

Config parse(const std::string& text, const std::string& path) {
  Config config;
  config.path = path;
  size_t slash = path.rfind('/');
  config.dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  Parser p{path, config.dir};
  config.qmail_home = "/var/qmail";

  enum class Section { kGlobal, kService, kListener } section = Section::kGlobal;
  Service* service = nullptr;
  Listener* listener = nullptr;
  std::set<std::string> seen_keys;
  bool qmail_home_set = false;

  auto finish_listener = [&]() {
    if (listener && listener->host.empty()) {
      p.line = listener->line;
      p.fail("[listener " + listener->name + "] has no address");
    }
  };

  std::istringstream in(text);
  std::string raw;
  while (std::getline(in, raw)) {
    ++p.line;
    std::string s = trim(raw);
    if (s.empty() || s[0] == '#') continue;
    if (s[0] == '[') {
      if (s.back() != ']') p.fail("section header must end with ]");
      std::istringstream words(s.substr(1, s.size() - 2));
      std::string kind, name, extra;
      words >> kind >> name >> extra;
      if (name.empty() || !extra.empty())
        p.fail("section header must be [service NAME] or [listener NAME]");
      finish_listener();
      seen_keys.clear();
      listener = nullptr;
      service = nullptr;
      if (kind == "service") {
        if (!kServiceKeys.count(name)) p.fail("unknown service '" + name + "'");
        if (config.services.count(name)) p.fail("[service " + name + "] given twice");
        service = &config.services[name];
        service->name = name;
        service->line = p.line;
        section = Section::kService;
      } else if (kind == "listener") {
        for (const auto& l : config.listeners) {
          if (l.name == name) p.fail("[listener " + name + "] given twice");
        }
        config.listeners.emplace_back();
        listener = &config.listeners.back();
        listener->name = name;
        listener->line = p.line;
        section = Section::kListener;
      } else {
        p.fail("unknown section kind '" + kind + "' (expected service or listener)");
      }
      continue;
    }
    size_t eq = s.find('=');
    if (eq == std::string::npos) p.fail("expected 'key = value'");
    std::string key = trim(s.substr(0, eq));
    std::string value = trim(s.substr(eq + 1));
    if (!seen_keys.insert(key).second) p.fail(key + " given twice in this section");

    switch (section) {
      case Section::kGlobal:
        if (!kGlobalKeys.count(key)) p.fail("unknown global setting '" + key + "'");
        if (key == "qmail_home") {
          config.qmail_home = normalize(p.absolute(value));
          qmail_home_set = true;
        } else if (key == "drain_timeout") {
          config.drain_timeout = static_cast<int>(p.number(key, value, 0, 86400));
        } else if (key == "log_level") {
          if (value != "debug" && value != "info" && value != "warning" && value != "error") {
            p.fail("log_level must be debug, info, warning or error");
          }
          config.log_level = value;
        }
        break;
      case Section::kService: {
        bool known = kCommonServiceKeys.count(key) || kServiceKeys.at(service->name).count(key);
        if (!known) p.fail("unknown setting '" + key + "' in [service " + service->name + "]");
        if (key == "user") {
          service->user = value;
        } else if (key == "processes") {
          service->processes = static_cast<int>(p.number(key, value, 1, 1000));
        } else if (key == "sessions_per_worker") {
          service->sessions_per_worker = static_cast<int>(p.number(key, value, 1, 100000));
        } else if (key == "max_use") {
          service->max_use = static_cast<int>(p.number(key, value, 1, 100000000));
        } else if (key == "chroot") {
          service->chroot = normalize(p.absolute(value));
        } else if (key == "socket") {
          std::string path = socket_path(p.absolute(value));
          if (value.empty() || path.size() >= kMaxSocketPath) {
            p.fail("socket must be a path of 1 to " + std::to_string(kMaxSocketPath - 1) +
                   " bytes");
          }
          service->settings[key] = path;
        } else if (key == "queue_timeout" || key == "error_fd" || key == "plugin_timeout" ||
                   key == "max_output" || key == "check_timeout" || key == "concurrency" ||
                   key == "max_failures" || key == "failure_window") {
          long min = key == "error_fd" ? 3 : key == "plugin_timeout" ? 0 : 1;
          p.number(key, value, min, key == "max_output" ? 1L << 30 : 86400 * 7);
          service->settings[key] = value;
        } else if (key == "cram_order") {
          if (value != "response_first" && value != "challenge_first") {
            p.fail("cram_order must be response_first or challenge_first");
          }
          service->settings[key] = value;
        } else {
          service->settings[key] = value;
        }
        break;
      }
      case Section::kListener:
        if (!kListenerKeys.count(key)) {
          p.fail("unknown setting '" + key + "' in [listener " + listener->name + "]");
        }
        if (key == "address") {
          if (!split_address(value, &listener->host, &listener->port)) {
            p.fail("address must be IPv4:port or [IPv6]:port, got '" + value + "'");
          }
        } else if (key == "control_dir") {
          listener->control_dir = normalize(p.absolute(value));
        } else if (key == "tcprules") {
          listener->tcprules = normalize(p.absolute(value));
        } else if (key == "remote_host_lookup") {
          listener->remote_host_lookup = p.boolean(key, value);
        } else if (key == "remote_host_timeout") {
          listener->remote_host_timeout = static_cast<int>(p.number(key, value, 1, 120));
        } else if (key == "local_host") {
          listener->local_host = value;
        } else if (key == "tls_certificate") {
          listener->tls_certificate = normalize(p.absolute(value));
        } else if (key == "tls_key") {
          listener->tls_key = normalize(p.absolute(value));
        } else if (key == "implicit_tls") {
          listener->implicit_tls = p.boolean(key, value);
        } else if (key == "require_tls") {
          listener->require_tls = p.boolean(key, value);
        } else if (key == "require_auth") {
          listener->require_auth = p.boolean(key, value);
        } else if (key == "realrcptto") {
          listener->realrcptto = p.boolean(key, value);
        } else if (key == "rbl") {
          listener->rbl = value;
        } else if (key == "rbl_when") {
          if (value != "connect" && value != "rcpt") p.fail("rbl_when must be connect or rcpt");
          listener->rbl_at_rcpt = value == "rcpt";
        } else if (key == "tls_handshake_timeout") {
          listener->tls_handshake_timeout = static_cast<int>(p.number(key, value, 1, 3600));
        } else if (key == "max_connections_per_ip") {
          listener->max_connections_per_ip = static_cast<int>(p.number(key, value, 0, 1000000));
        } else if (key == "max_connection_rate_per_ip") {
          listener->max_connection_rate_per_ip = static_cast<int>(p.number(key, value, 0, 1000000));
        } else if (key == "connection_rate_window") {
          listener->connection_rate_window = static_cast<int>(p.number(key, value, 1, 86400));
        } else if (key == "clamd_unavailable") {
          if (value != "tempfail" && value != "accept") {
            p.fail("clamd_unavailable must be tempfail or accept");
          }
          listener->clamd_accept_unavailable = value == "accept";
        } else if (key == "clamd_timeout") {
          listener->clamd_timeout = static_cast<int>(p.number(key, value, 1, 3600));
        } else {
          long v = p.number(key, value, 0, 1L << 40);
          if (key == "databytes") listener->databytes = v;
          if (key == "timeoutsmtpd") listener->timeoutsmtpd = v;
          if (key == "maxcmdlen") listener->maxcmdlen = v;
          if (key == "maxaddrlen") listener->maxaddrlen = v;
          if (key == "maxhops") listener->maxhops = v;
        }
        break;
    }
  }
  finish_listener();
  (void)qmail_home_set;
  p.line = 0;
  if (config.listeners.empty()) {
    throw ConfigError(path + ": no [listener ...] section: sppd would accept no mail");
  }
  for (auto& l : config.listeners) {
    if (l.control_dir.empty()) l.control_dir = config.qmail_home + "/control";
    // qmail's TLS patches: control/servercert.pem holds the chain and the key.
    if (l.tls_certificate.empty()) l.tls_certificate = l.control_dir + "/servercert.pem";
    if (l.tls_key.empty()) l.tls_key = l.tls_certificate;
  }
  for (const char* required : {"smtpd", "queue-bridge", "dnsbl-cache", "pluginrunner", "authd"}) {
    if (!config.services.count(required)) {
      Service& s = config.services[required];
      s.name = required;
    }
  }
  Service& smtpd = config.services["smtpd"];
  if (smtpd.chroot.empty()) smtpd.chroot = "/var/lib/sppd/empty";
  config.services["dnsbl-cache"].settings.try_emplace("socket", kDefaultDnsblSocket);
  return config;
}

Config load(const std::string& path) {
  std::string absolute = path;
  char resolved[PATH_MAX];
  if (realpath(path.c_str(), resolved)) absolute = resolved;
  std::ifstream in(absolute);
  if (!in) throw ConfigError(path + ": cannot read config file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), absolute);
}

}  // namespace sppd::config
