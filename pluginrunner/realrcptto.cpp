// realrcptto implementation (contract in realrcptto.h). The steps follow Paul Jarc's
// realrcptto.c, which itself strings together qmail-send.c rewrite(), qmail-lspawn.c
// nughde_get(), qmail-getpw.c userext() and qmail-local.c qmesearch(); the comments name the
// qmail function each step stands for, so a difference from qmail is a bug here.
#include "pluginrunner/realrcptto.h"

#include <errno.h>

#include <cstring>
#include <set>

#include "common/ascii.h"

namespace sppd::pluginrunner {
namespace {

constexpr char kBreak = '-';                 // auto_break: user-ext separator
constexpr char kAliasUser[] = "alias";       // auto_usera: takes what no user takes
constexpr size_t kMaxUserName = 32;          // qmail-getpw's GETPW_USERLEN, NUL included
constexpr char kNoAtHost[] = "envnoathost";  // control_rldef's last resort

using ascii::lower;

// control/locals, falling back to control/me (control_readfile with flagme).
std::set<std::string> local_domains(QmailFiles& files) {
  std::set<std::string> out;
  auto lines = files.control_lines("locals");
  if (!lines) {
    auto me = files.control_line("me");
    if (me) lines = std::vector<std::string>{*me};
  }
  if (lines) {
    for (const std::string& line : *lines) out.insert(lower(line));
  }
  return out;
}

// control/virtualdomains as qmail's constmap with flagcolon: the key is what precedes the
// first ':', lines without one are skipped, and a later line for a key wins (constmap
// chains new entries in front).
std::map<std::string, std::string> virtual_domains(QmailFiles& files) {
  std::map<std::string, std::string> out;
  auto lines = files.control_lines("virtualdomains");
  if (!lines) return out;
  for (const std::string& line : *lines) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    out[lower(line.substr(0, colon))] = line.substr(colon + 1);
  }
  return out;
}

// qmail-send rewrite(): the local part qmail-lspawn would get, or nullopt (and why) when
// the address is delivered elsewhere.
std::optional<std::string> local_part_for(const std::string& recipient, QmailFiles& files,
                                          std::string* why) {
  std::string address = recipient;
  size_t i = address.rfind('@');
  if (i == std::string::npos) {
    i = address.size();
    std::optional<std::string> host = files.control_line("envnoathost");
    if (!host) host = files.control_line("me");
    address += "@" + host.value_or(kNoAtHost);
  }
  if (auto hacks = files.control_lines("percenthack")) {
    std::set<std::string> percenthack;
    for (const std::string& line : *hacks) percenthack.insert(lower(line));
    // user%host@hack -> user@host, as often as the new domain is itself in percenthack.
    while (percenthack.count(lower(std::string_view(address).substr(i + 1)))) {
      size_t percent = address.rfind('%', i == 0 ? 0 : i - 1);
      if (percent == std::string::npos || percent >= i) break;
      address.resize(i);
      i = percent;
      address[i] = '@';
    }
  }
  const size_t at = address.rfind('@');
  const std::string domain = lower(std::string_view(address).substr(at + 1));
  if (local_domains(files).count(domain)) return address.substr(0, at);

  // virtualdomains: the whole address, then the domain, then each ".suffix" of it, then
  // the empty key (a catch-all ":prefix" line), first match wins.
  auto vdoms = virtual_domains(files);
  const std::string folded = lower(address);
  for (size_t k = 0; k <= folded.size(); ++k) {
    bool candidate = k == 0 || k == at + 1 || k == folded.size() || (k > at && folded[k] == '.');
    if (!candidate) continue;
    auto hit = vdoms.find(folded.substr(k));
    if (hit == vdoms.end()) continue;
    if (hit->second.empty()) {
      *why = "virtualdomains line \"" + hit->first + ":\" excludes it";
      return std::nullopt;
    }
    return hit->second + "-" + address.substr(0, at);
  }
  *why = "not in locals or virtualdomains";
  return std::nullopt;
}

// Where qmail-local looks: the home directory, the dash and the extension it searches with.
struct Delivery {
  std::string user;  // for the log
  std::string home;
  std::string dash;
  std::string extension;
};

// The "\0"-separated fields of a users/cdb value (with the wildcard rest appended):
// user, uid, gid, home, dash, ext. nullopt if there are fewer than six.
std::optional<Delivery> parse_assignment(const std::string& value) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (fields.size() < 5) {
    size_t nul = value.find('\0', start);
    if (nul == std::string::npos) return std::nullopt;
    fields.push_back(value.substr(start, nul - start));
    start = nul + 1;
  }
  // The extension is the rest; qmail reads it as a C string, so it ends at a NUL.
  std::string extension = value.substr(start);
  extension.resize(std::strlen(extension.c_str()));
  return Delivery{fields[0], fields[3], fields[4], extension};
}

// qmail-lspawn nughde_get(), the users/cdb half: the exact "=" key first, then ever shorter
// "+" prefixes (only those ending in a character some "+" line ends in, and the empty one).
// nullopt: the table has no line for local; a malformed record is reported through *bad.
std::optional<Delivery> assigned(const UserTable& table, const std::string& local, bool* bad) {
  std::optional<std::string> wildchars = table.find("");
  if (!wildchars) throw LookupError("users/cdb has no wildcard record: rebuild it with qmail-newu");
  std::string key = lower("!" + local);
  key.push_back('\0');
  size_t i = key.size();
  bool wild = false;
  do {
    if (!wild || i == 1 || wildchars->find(key[i - 1]) != std::string::npos) {
      if (std::optional<std::string> value = table.find(std::string_view(key).substr(0, i))) {
        if (wild) *value += local.substr(i - 1);
        std::optional<Delivery> delivery = parse_assignment(*value);
        if (!delivery) *bad = true;
        return delivery;
      }
    }
    --i;
    wild = true;
  } while (i > 0);
  return std::nullopt;
}

// qmail-getpw userext(): the longest "user" or "user-ext" split of local whose user exists,
// is not root and owns its existing home directory.
std::optional<Delivery> passwd_user(const std::string& local, QmailFiles& files) {
  for (size_t end = local.size();; --end) {
    if (end < kMaxUserName && (end == local.size() || local[end] == kBreak)) {
      std::string name = lower(local.substr(0, end));
      std::optional<PasswdEntry> user = name.empty() ? std::nullopt : files.passwd(name);
      if (user && user->uid != 0) {
        PathStatus home = files.stat(user->home);
        if (home.error == 0) {
          if (home.owner == user->uid) {
            if (end == local.size()) return Delivery{user->name, user->home, "", ""};
            return Delivery{user->name, user->home, "-", local.substr(end + 1)};
          }
        } else if (temporary_error(home.error)) {
          throw LookupError("unable to stat " + user->home + ": " + std::strerror(home.error));
        }
      }
    }
    if (end == 0) return std::nullopt;
  }
}

// qmail-local qmesearch(): .qmail<dash><ext>, then .qmail<dash><ext up to a '-'>default from
// the longest to .qmail<dash>default. The extension is lower-cased and its dots become ':'.
MailboxVerdict search_dot_qmail(const Delivery& delivery, QmailFiles& files) {
  std::string extension = lower(delivery.extension);
  for (char& c : extension) {
    if (c == '.') c = ':';
  }
  auto examine = [&](const std::string& path) -> std::optional<MailboxVerdict> {
    PathStatus status = files.stat(path);
    if (status.error == 0) return MailboxVerdict{Mailbox::kExists, "delivered by " + path, ""};
    if (status.error == ENOENT) return std::nullopt;
    // realrcptto accepts what it cannot examine: qmail-local will decide.
    return MailboxVerdict{Mailbox::kExists, "",
                          "unable to stat " + path + ": " + std::strerror(status.error)};
  };
  const std::string base = delivery.home + "/.qmail" + delivery.dash;
  if (auto found = examine(base + extension)) return *found;
  for (size_t i = extension.size() + 1; i-- > 0;) {
    if (i != 0 && extension[i - 1] != '-') continue;
    if (auto found = examine(base + extension.substr(0, i) + "default")) return *found;
  }
  return MailboxVerdict{Mailbox::kNoMailbox,
                        "user " + delivery.user + " has neither " + base + extension +
                            " nor a matching .qmail" + delivery.dash + "...default file",
                        ""};
}

}  // namespace

bool temporary_error(int error) {
  switch (error) {
    case EINTR:
    case ENOMEM:
    case ETXTBSY:
    case EIO:
    case ETIMEDOUT:
    case EAGAIN:
    case EDEADLK:
    case EBUSY:
    case ENFILE:
    case EMFILE:
    case EFBIG:
    case ENOSPC:
    case ENETDOWN:
    case ENETUNREACH:
    case ENETRESET:
    case ECONNABORTED:
    case ECONNRESET:
    case ENOBUFS:
    case ETOOMANYREFS:
    case ECONNREFUSED:
    case EHOSTDOWN:
    case EHOSTUNREACH:
    case EUSERS:
    case EDQUOT:
    case ESTALE:
    case ENOLCK:
      return true;
    default:
      return false;
  }
}

AssignTable::AssignTable(const std::string& text) {
  std::string wildchars;
  bool finished = false;
  size_t start = 0;
  int number = 0;
  while (start <= text.size()) {
    size_t newline = text.find('\n', start);
    std::string line =
        text.substr(start, newline == std::string::npos ? std::string::npos : newline - start);
    ++number;
    auto bad = [&](const std::string& what) {
      return LookupError("bad format in users/assign line " + std::to_string(number) + ": " + what +
                         " (qmail-newu would refuse it)");
    };
    if (!line.empty() && line[0] == '.') {
      finished = true;
      break;
    }
    if (newline == std::string::npos) throw bad("no final \".\" line");
    start = newline + 1;
    if (line.find('\0') != std::string::npos) throw bad("NUL byte");
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) throw bad("no \"=local:\" or \"+prefix:\"");
    std::string key = "!" + line.substr(1, colon - 1);
    if (line[0] == '+') {
      key = lower(key);
      // qmail-newu records the prefix's last character as written (not lower-cased).
      if (colon >= 2 && wildchars.find(line[colon - 1]) == std::string::npos) {
        wildchars.push_back(line[colon - 1]);
      }
    } else {
      key.push_back('\0');
      key = lower(key);
    }
    std::string value = line.substr(colon + 1);
    int colons = 0;
    size_t end = 0;
    for (; end < value.size(); ++end) {
      if (value[end] == ':') {
        value[end] = '\0';
        if (++colons == 6) break;
      }
    }
    if (colons < 6) throw bad("fewer than seven fields");
    value.resize(end);
    records_.emplace(std::move(key), std::move(value));  // the first line of a key wins
  }
  if (!finished) throw LookupError("bad format in users/assign: no final \".\" line");
  records_.emplace("", wildchars);
}

std::optional<std::string> AssignTable::find(std::string_view key) const {
  auto it = records_.find(key);
  if (it == records_.end()) return std::nullopt;
  return it->second;
}

MailboxVerdict check_mailbox(const std::string& recipient, QmailFiles& files) {
  std::string why;
  std::optional<std::string> local = local_part_for(recipient, files, &why);
  if (!local) return MailboxVerdict{Mailbox::kNotLocal, why, ""};

  std::optional<Delivery> delivery;
  if (std::unique_ptr<UserTable> table = files.user_table()) {
    bool bad = false;
    delivery = assigned(*table, *local, &bad);
    if (bad) {
      return MailboxVerdict{
          Mailbox::kExists, "",
          "the users/cdb or users/assign entry for \"" + *local + "\" has fewer than six fields"};
    }
  }
  if (!delivery) {
    delivery = passwd_user(*local, files);
    if (!delivery) {
      std::optional<PasswdEntry> alias = files.passwd(kAliasUser);
      if (!alias) {
        return MailboxVerdict{Mailbox::kNoMailbox,
                              "no user for \"" + *local + "\" and no user " + kAliasUser, ""};
      }
      delivery = Delivery{alias->name, alias->home, "-", *local};
    }
  }
  // A user's own address (no extension) always has a mailbox: ~/.qmail or defaultdelivery.
  if (delivery->dash.empty()) {
    return MailboxVerdict{Mailbox::kExists, "user " + delivery->user + " without extension", ""};
  }
  return search_dot_qmail(*delivery, files);
}

}  // namespace sppd::pluginrunner
