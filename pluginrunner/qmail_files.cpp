// SystemQmailFiles implementation (contract in qmail_files.h): control files with qmail's
// rules (common/control), users/cdb through tinycdb (opened per lookup, as qmail-lspawn
// does), users/assign as a fallback, getpwnam_r and stat(2).
#include "pluginrunner/qmail_files.h"

#include <cdb.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/control.h"
#include "common/fd.h"

namespace sppd::pluginrunner {
namespace {

// users/cdb, mapped by tinycdb until the table goes.
class CdbUserTable final : public UserTable {
 public:
  CdbUserTable(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {
    if (cdb_init(&db_, fd_.get()) != 0) {
      throw LookupError(path_ + " is not a cdb file: rebuild it with qmail-newu");
    }
  }
  ~CdbUserTable() override { cdb_free(&db_); }
  CdbUserTable(const CdbUserTable&) = delete;
  CdbUserTable& operator=(const CdbUserTable&) = delete;

  std::optional<std::string> find(std::string_view key) const override {
    struct cdb* db = &db_;
    int found = cdb_find(db, key.data(), static_cast<unsigned>(key.size()));
    if (found < 0) throw LookupError(path_ + " is corrupt: rebuild it with qmail-newu");
    if (found == 0) return std::nullopt;
    std::string value(cdb_datalen(db), '\0');
    if (cdb_read(db, value.data(), cdb_datalen(db), cdb_datapos(db)) != 0) {
      throw LookupError(path_ + " is corrupt: rebuild it with qmail-newu");
    }
    return value;
  }

 private:
  UniqueFd fd_;
  std::string path_;
  // cdb_find keeps the position of the value it found in here; the mapping never changes.
  mutable struct cdb db_ {};
};

template <typename Read>
auto control_file(const std::string& path, Read&& read) -> decltype(read(path)) {
  try {
    return read(path);
  } catch (const control::ControlError& e) {
    throw LookupError(e.what());
  }
}

}  // namespace

std::optional<std::vector<std::string>> SystemQmailFiles::control_lines(const std::string& name) {
  return control_file(home_ + "/control/" + name,
                      [](const std::string& path) { return control::read_lines(path); });
}

std::optional<std::string> SystemQmailFiles::control_line(const std::string& name) {
  return control_file(home_ + "/control/" + name,
                      [](const std::string& path) { return control::read_line(path); });
}

std::unique_ptr<UserTable> SystemQmailFiles::user_table() {
  const std::string cdb_path = home_ + "/users/cdb";
  UniqueFd fd(::open(cdb_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd) return std::make_unique<CdbUserTable>(std::move(fd), cdb_path);
  if (errno != ENOENT) {
    throw LookupError("unable to open " + cdb_path + ": " + std::strerror(errno));
  }
  // No cdb: users/assign as qmail-newu would compile it (an admin who edits assign and has
  // not run qmail-newu yet gets the checks the next qmail-newu will make true).
  const std::string assign_path = home_ + "/users/assign";
  std::ifstream in(assign_path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return nullptr;
    throw LookupError("unable to open " + assign_path + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw LookupError("unable to read " + assign_path);
  return std::make_unique<AssignTable>(text.str());
}

std::optional<PasswdEntry> SystemQmailFiles::passwd(const std::string& name) {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buffer(size > 0 ? static_cast<size_t>(size) : 16384, '\0');
  while (true) {
    struct passwd entry {};
    struct passwd* result = nullptr;
    int error = getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &result);
    if (error == ERANGE && buffer.size() < (1u << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (result) return PasswdEntry{entry.pw_name, entry.pw_uid, entry.pw_dir};
    // getpwnam_r(3): these say "no such user"; anything else is a failed lookup.
    if (error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM) {
      return std::nullopt;
    }
    throw LookupError("unable to look up user " + name + ": " + std::strerror(error));
  }
}

PathStatus SystemQmailFiles::stat(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return PathStatus{errno, 0};
  return PathStatus{0, st.st_uid};
}

}  // namespace sppd::pluginrunner
