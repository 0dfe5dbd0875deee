// kSenderCheck in the dnsbl-cache server (contract in server.h and protocol.h): the frame is
// checked, the check runs in SenderChecks, the verdict goes back to the worker that asked (if
// its channel is still there). The sender is the SMTP client's text, so a domain that is not
// a domain name is a verdict (no_domain), never a protocol error; what only a broken worker
// sends (no sender or '@', a bad level, HELO name or mxblacklist address) costs its channel.
#include <optional>

#include "common/log.h"
#include "common/protocol.h"
#include "dnsbl-cache/reverse_name.h"
#include "dnsbl-cache/server.h"

namespace sppd::dnsbl_cache {
namespace {

constexpr size_t kMaxHelo = 255;

// A HELO argument we may send: a non-empty word of printable ASCII.
bool valid_helo(const std::string& helo) {
  if (helo.empty() || helo.size() > kMaxHelo) return false;
  for (char c : helo) {
    if (c <= ' ' || c >= 0x7f) return false;
  }
  return true;
}

}  // namespace

void Server::on_sender_check(helper::Client& client, const ipc::Frame& frame) {
  const std::string* sender = frame.get("sender");
  const std::string* level = frame.get("level");
  if (!sender || !level || sender->find('@') == std::string::npos) {
    return service_.malformed(client, "kSenderCheck needs a sender with '@' and a level");
  }
  SenderCheckRequest request;
  request.sender = *sender;
  if (*level != "1" && *level != "2") {
    return service_.malformed(client, "kSenderCheck level must be 1 or 2");
  }
  request.level = *level == "1" ? 1 : 2;
  if (request.level == 2) {
    request.helo = frame.get_or("helo", "");
    if (!valid_helo(request.helo)) {
      return service_.malformed(client, "kSenderCheck level 2 needs a HELO name of one word");
    }
    for (std::string_view entry : frame.all("mxblacklist")) {
      std::optional<IpAddress> ip = parse_ip(entry);
      if (!ip) return service_.malformed(client, "mxblacklist entry is not an IP address");
      request.mxblacklist.push_back(ip->text);
    }
  }
  uint64_t id = client.id;
  uint32_t request_id = frame.request_id;
  sender_.check(request, [this, id, request_id](const SenderVerdict& verdict) {
    helper::Client* asker = service_.find_client(id);
    if (!asker) return;
    ipc::Frame reply(protocol::kSenderVerdict, request_id);
    reply.add("verdict", status_text(verdict.status));
    for (const std::string& line : verdict.reply) reply.add("reply", line);
    if (!verdict.detail.empty()) reply.add("detail", verdict.detail);
    reply.add("cached", verdict.cached ? "yes" : "no");
    asker->channel->send(std::move(reply));
    service_.served();
  });
}

}  // namespace sppd::dnsbl_cache
