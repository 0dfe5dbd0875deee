// Privilege dropping (contract in privilege.h). Runs as root or as the invoking user.
#include "common/privilege.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"

namespace sppd::privilege {

void drop(const Target& target) {
  if (geteuid() != 0) {
    prctl(PR_SET_DUMPABLE, 0);
    return;
  }
  uid_t uid = 0;
  gid_t gid = 0;
  if (!target.user.empty()) {
    passwd* pw = getpwnam(target.user.c_str());
    if (!pw)
      log::fatal("unknown user '", target.user, "' (create it or change user = in sppd.conf)");
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  if (!target.chroot.empty()) {
    if (chroot(target.chroot.c_str()) < 0 || chdir("/") < 0) {
      log::fatal("chroot ", target.chroot, ": ", std::strerror(errno));
    }
  }
  if (!target.user.empty()) {
    if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
      log::fatal("cannot switch to user ", target.user, ": ", std::strerror(errno));
    }
    if (uid != 0 && setuid(0) == 0) log::fatal("privilege drop failed: setuid(0) still works");
  }
  prctl(PR_SET_DUMPABLE, 0);
}

}  // namespace sppd::privilege
