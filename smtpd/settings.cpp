// Loading a listener's qmail control files and tcprules (see settings.h). Runs as root or
// the invoking user before the sandbox; never touches client data.
#include "smtpd/settings.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include "common/control.h"
#include "common/log.h"

namespace sppd::smtpd {
namespace {

// The addresses qmail's ipme() would list: every interface address, plus 0.0.0.0.
std::vector<std::string> local_addresses() {
  std::vector<std::string> out{"0.0.0.0"};
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text))) out.emplace_back(text);
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

std::unique_ptr<ListenerSettings> load_listener_settings(const config::Listener& listener,
                                                         bool auth_configured) {
  auto s = std::make_unique<ListenerSettings>();
  s->listener = listener;
  const std::string dir = listener.control_dir + "/";
  try {
    auto greeting = control::read_lines(dir + "smtpgreeting");
    auto me = control::read_line(dir + "me");
    if (greeting && !greeting->empty()) {
      s->greeting = *greeting;
    } else if (me && !me->empty()) {
      s->greeting = {*me};
    } else {
      throw control::ControlError("neither " + dir + "smtpgreeting nor " + dir + "me exists");
    }
    s->me = s->greeting.front();
    s->localiphost = control::read_line(dir + "localiphost").value_or(me.value_or(s->me));
    s->local_ips = local_addresses();

    auto rcpthosts = control::read_lines(dir + "rcpthosts");
    if (!rcpthosts) {
      log::warn("listener ", listener.name, ": no ", dir,
                "rcpthosts: nobody may relay except RELAYCLIENT sessions");
    }
    s->rcpthosts = std::make_unique<RcptHosts>(rcpthosts, dir + "morercpthosts.cdb");

    s->databytes = static_cast<unsigned long long>(listener.databytes.value_or(
        control::read_long(dir + "databytes", ListenerSettings::kDefaultDatabytes)));
    s->timeoutsmtpd =
        listener.timeoutsmtpd.value_or(control::read_long(dir + "timeoutsmtpd", 1200));
    if (s->timeoutsmtpd <= 0) s->timeoutsmtpd = 1;  // qmail: <= 0 becomes 1
    s->maxcmdlen = listener.maxcmdlen.value_or(control::read_long(dir + "maxcmdlen", 1000));
    s->maxaddrlen = listener.maxaddrlen.value_or(control::read_long(dir + "maxaddrlen", 900));
    s->maxhops = listener.maxhops.value_or(control::read_long(dir + "maxhops", 100));
    s->rcptcheck = control::read_line(dir + "rcptcheck").value_or("");
    if (!listener.tcprules.empty()) s->tcprules = TcpRules::load(listener.tcprules);

    // STARTTLS is offered when the certificate exists (qmail's TLS patch: servercert.pem);
    // an implicit-TLS listener without one cannot work at all.
    if (access(listener.tls_certificate.c_str(), F_OK) == 0) {
      s->tls = std::make_shared<TlsContext>(listener.tls_certificate, listener.tls_key);
    } else if (listener.implicit_tls || listener.require_tls) {
      throw control::ControlError("listener needs TLS but " + listener.tls_certificate +
                                  " does not exist");
    }
    std::string why;
    auto rbl = parse_rbl_options(listener.rbl, &why);
    if (!rbl) throw control::ControlError(why);
    s->rbl = std::move(*rbl);
    s->auth_configured = auth_configured;
    s->auth_methods_plain = static_cast<int>(control::read_long(dir + "auth/smtp", 60));
    s->auth_methods_tls = static_cast<int>(control::read_long(dir + "auth/smtps", 63));
    s->auth_delay = control::read_long(dir + "auth/delay", 0);
    s->auth_oldauth = control::read_long(dir + "auth/oldauth", 0) > 0;
  } catch (const std::exception& e) {
    s->control_error = e.what();
    log::error("listener ", listener.name, ": unable to read controls: ", e.what());
  }
  return s;
}

}  // namespace sppd::smtpd
