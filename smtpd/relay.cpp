// rcpthosts + morercpthosts.cdb (notqmail rcpthosts.c), built once per worker start before
// the sandbox (the cdb is mapped then; lookups need no system calls). A cdb that exists but
// cannot be opened throws (qmail: 421 unable to read controls).
#include "smtpd/relay.h"

#include <cdb.h>
#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/ascii.h"
#include "common/fd.h"
#include "common/log.h"

namespace sppd::smtpd {
namespace {

using ascii::lower;

}  // namespace

// The open morercpthosts.cdb: tinycdb keeps the file mapped until cdb_free.
struct RcptHosts::Cdb {
  Cdb(UniqueFd file, const std::string& path) : fd(std::move(file)), path(path) {
    if (cdb_init(&db, fd.get()) != 0) {
      throw std::runtime_error(path + ": not a cdb file (rebuild it with qmail-newmrh)");
    }
  }
  ~Cdb() { cdb_free(&db); }
  Cdb(const Cdb&) = delete;
  Cdb& operator=(const Cdb&) = delete;

  UniqueFd fd;
  std::string path;
  struct cdb db {};
};

RcptHosts::RcptHosts(std::optional<std::vector<std::string>> lines,
                     const std::string& morercpthosts_cdb) {
  if (!lines) return;
  configured_ = true;
  for (const std::string& line : *lines) hosts_.insert(lower(line));
  if (morercpthosts_cdb.empty()) return;
  UniqueFd fd(::open(morercpthosts_cdb.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return;
    throw std::runtime_error("cannot open " + morercpthosts_cdb + ": " + std::strerror(errno));
  }
  cdb_ = std::make_unique<Cdb>(std::move(fd), morercpthosts_cdb);
}

RcptHosts::~RcptHosts() = default;

bool RcptHosts::allowed(const std::string& address) const {
  if (!configured_) return false;
  size_t at = address.rfind('@');
  if (at == std::string::npos) return true;  // qmail: "presumably envnoathost is acceptable"
  return listed(lower(std::string_view(address).substr(at + 1)));
}

// host is lower-case. Candidates: the host, then every suffix that starts at a '.'.
bool RcptHosts::listed(const std::string& host) const {
  for (size_t i = 0; i < host.size(); ++i) {
    if ((i == 0 || host[i] == '.') && hosts_.contains(host.substr(i))) return true;
  }
  if (!cdb_) return false;
  for (size_t i = 0; i < host.size(); ++i) {
    if (i != 0 && host[i] != '.') continue;
    int found = cdb_find(&cdb_->db, host.data() + i, static_cast<unsigned>(host.size() - i));
    if (found > 0) return true;
    if (found < 0) {
      // qmail answers 421 here; a bool cannot say "temporary", so refuse and tell the admin.
      log::error(cdb_->path, ": corrupt cdb file, refusing relay (rebuild it with qmail-newmrh)");
      return false;
    }
  }
  return false;
}

}  // namespace sppd::smtpd
