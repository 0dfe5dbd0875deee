// realrcptto: does a recipient's mailbox exist by qmail's own delivery rules? Paul Jarc's
// realrcptto patch (in qmail-md) as pure code over QmailFiles, an injected view of the qmail
// home: qmail-send's rewrite (envnoathost, percenthack, locals, virtualdomains), qmail-lspawn's
// users/cdb lookup (or users/assign, read as qmail-newu would compile it), qmail-getpw's passwd
// rules and qmail-local's .qmail file search. Called by pluginrunner (kRealRcptTo), never by the
// worker. "Cannot tell now" (unreadable files, a broken cdb, an NFS error) throws LookupError.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sppd::pluginrunner {

// A temporary failure: the recipient can be neither accepted nor refused now.
struct LookupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The passwd fields qmail-getpw uses.
struct PasswdEntry {
  std::string name;
  uid_t uid = 0;
  std::string home;
};

// stat(2) of a path: error 0 = it exists and owner is its uid; else the errno.
struct PathStatus {
  int error = 0;
  uid_t owner = 0;
};

// users/cdb's records as qmail-newu writes them: key "!" + local + "\0" for a "=" line,
// "!" + prefix for a "+" line (both lower case), value "user\0uid\0gid\0home\0dash\0ext";
// key "" holds the last characters of the "+" prefixes (qmail-lspawn's wildchars).
class UserTable {
 public:
  virtual ~UserTable() = default;
  // The value for key; nullopt if there is none. Throws LookupError.
  virtual std::optional<std::string> find(std::string_view key) const = 0;
};

// users/assign read into the records qmail-newu would write into users/cdb. As in the cdb, the
// first line of a key wins. Throws LookupError for what qmail-newu calls "bad format in
// users/assign" (a line without six fields, a NUL byte, no final "." line).
class AssignTable final : public UserTable {
 public:
  explicit AssignTable(const std::string& text);
  std::optional<std::string> find(std::string_view key) const override;

 private:
  std::map<std::string, std::string, std::less<>> records_;
};

// What realrcptto reads of the qmail home. Implementations throw LookupError when a file
// exists but cannot be read.
class QmailFiles {
 public:
  virtual ~QmailFiles() = default;
  // control/NAME by qmail's control_readfile rules; nullopt if it does not exist.
  virtual std::optional<std::vector<std::string>> control_lines(const std::string& name) = 0;
  // control/NAME's first line (control_readline); nullopt if it does not exist.
  virtual std::optional<std::string> control_line(const std::string& name) = 0;
  // users/cdb if it exists, else users/assign, else nullptr (qmail-getpw decides alone).
  virtual std::unique_ptr<UserTable> user_table() = 0;
  // getpwnam(name); nullopt if there is no such user.
  virtual std::optional<PasswdEntry> passwd(const std::string& name) = 0;
  virtual PathStatus stat(const std::string& path) = 0;
};

enum class Mailbox {
  kExists,     // qmail would deliver it (or cannot be judged: realrcptto then accepts)
  kNoMailbox,  // a local address qmail-local would bounce: "no mailbox here by that name"
  kNotLocal,   // not delivered on this host: none of realrcptto's business
};

struct MailboxVerdict {
  Mailbox mailbox = Mailbox::kNotLocal;
  std::string why;      // for the log: which rule decided
  std::string warning;  // non-empty: accepted only because a file could not be examined
};

// realrcptto(): the verdict for one envelope recipient. Throws LookupError.
MailboxVerdict check_mailbox(const std::string& recipient, QmailFiles& files);

// qmail's error_temp(): errors that may go away by themselves (an NFS hiccup, no memory).
bool temporary_error(int error);

}  // namespace sppd::pluginrunner
