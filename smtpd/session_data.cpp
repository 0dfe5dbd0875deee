// DATA: the message streams from the client through the DataDecoder straight into
// qmail-queue's message pipe (passed to us by queue-bridge), never held whole. The
// envelope goes to queue-bridge after the pipe is closed, and 250 is sent only when
// queue-bridge reports that qmail-queue exited 0. Any failure aborts the transaction so
// nothing half-done is queued (qmail-queue sees EOF before its envelope and gives up).
// With control/clamd the same bytes stream to clamd at the same time (VirusScan, over the
// socket queue-bridge connected for us), and the envelope waits for clamd's verdict: a
// virus is refused after a tarpit, a clamd that cannot scan means clamd_unavailable.
#include <ctime>
#include <utility>

#include "common/log.h"
#include "common/protocol.h"
#include "smtpd/helper_link.h"
#include "smtpd/received.h"
#include "smtpd/replies.h"
#include "smtpd/session.h"

namespace sppd::smtpd {
namespace {
// Bytes queued towards qmail-queue before we stop decoding client input (backpressure).
constexpr size_t kPipeHighWater = 256 * 1024;
// Recipients per envelope frame, well inside the 64 KiB frame limit for 1000-byte addresses.
constexpr size_t kEnvelopeFrameBudget = 48 * 1024;
// clamd_unavailable = tempfail: what the client hears when clamd cannot scan its message.
constexpr const char* kScannerUnavailable = "virus scanner unavailable, try again later (#4.3.0)";

}  // namespace

void Session::on_queue_frame(ipc::Frame* frame) {
  if (phase_ == Phase::kFinished) return;
  if (!frame) {
    // queue-bridge went away: whatever was written cannot be queued any more.
    queue_request_.reset();
    if (!decoder_) {
      reply("451 4.3.0 qqt failure");
      set_busy(false);
      process_input();
      return;
    }
    queue_result_ = {"451", "qq temporary problem (#4.3.0)"};
    stop_writing_message();
    if (data_complete_) finish_transaction();
    return;
  }
  if (frame->type == protocol::kQueueScanner && !decoder_) {
    // Comes just before kQueueOpened: clamd's socket, or why there is none.
    if (frame->fd) {
      scanner_socket_ = std::move(frame->fd);
    } else {
      scanner_unavailable_ = frame->get_or("text", "queue-bridge could not connect to clamd");
    }
    return;
  }
  if (frame->type == protocol::kQueueOpened && !decoder_) {
    if (!frame->fd) {
      log::error("session ", id_, ": queue-bridge sent no message pipe");
      abort_transaction();
      reply("451 4.3.0 qqt failure");
      set_busy(false);
      process_input();
      return;
    }
    if (!start_scan()) return;
    begin_data(std::move(frame->fd), frame->get_or("pid", "?"));
    return;
  }
  if (frame->type == protocol::kQueueResult) {
    std::string status = frame->get_or("status", "temp");
    std::string text = frame->get_or("text", "qq temporary problem (#4.3.0)");
    if (!decoder_) {
      // qmail-queue could not be started: qmail-smtpd's "qqt failure" at DATA.
      if (queue_request_) context_.queue->cancel(*queue_request_);
      queue_request_.reset();
      scanner_socket_.reset();
      reply(qmail_reply(status == "perm" ? "554" : "451", text));
      set_busy(false);
      process_input();
      return;
    }
    queue_result_ = {status == "ok" ? "250" : status == "perm" ? "554" : "451", text};
    stop_writing_message();
    if (data_complete_) finish_transaction();
  }
}

void Session::begin_data(UniqueFd message_pipe, const std::string& qp) {
  message_pipe_ = std::make_unique<MessagePipe>(
      context_.base, std::move(message_pipe), static_cast<int>(settings_.timeoutsmtpd),
      [this] { on_pipe_progress(); }, [this](bool timed_out) { on_pipe_failed(timed_out); });
  decoder_ = std::make_unique<DataDecoder>(databytes(), static_cast<int>(settings_.maxhops));
  data_complete_ = false;
  message_closed_ = false;
  committed_ = false;
  queue_result_.reset();

  auto get = [this](const char* name) -> std::optional<std::string> {
    const std::string* v = env(name);
    return v ? std::optional<std::string>(*v) : std::nullopt;
  };
  ReceivedFacts facts;
  facts.remote_host = get("TCPREMOTEHOST");
  facts.helo = helo_;
  facts.remote_info = get("TCPREMOTEINFO");
  facts.remote_ip = get("TCPREMOTEIP");
  facts.local_host = get("TCPLOCALHOST");
  facts.local_ip = get("TCPLOCALIP");
  facts.protocol = received_protocol();
  facts.when = time(nullptr);
  // qmail-spp: the plugins' H lines follow our Received line; then its per-message state
  // (headers, L-queues, counters) starts over.
  std::string received = received_line(facts) + plugin_headers_;
  message_pipe_->hold(received);
  if (virus_scan_) virus_scan_->feed(received);
  reset_plugin_transaction();

  log::debug("session ", id_, ": DATA into qmail-queue pid ", qp);
  reply("354 go ahead");
  flush();
  phase_ = Phase::kData;
  set_busy(false);
  process_input();
}

void Session::feed_data() {
  evbuffer* input = bufferevent_get_input(client_.get());
  std::string decoded;
  while (evbuffer_get_length(input) > 0) {
    if (message_pipe_ && message_pipe_->pending() > kPipeHighWater) {
      return;  // on_pipe_progress resumes us once qmail-queue has caught up
    }
    if (virus_scan_ && virus_scan_->pending() > kPipeHighWater) {
      return;  // the scan's drain handler resumes us once clamd has caught up
    }
    evbuffer_iovec chunk;
    if (evbuffer_peek(input, -1, nullptr, &chunk, 1) < 1) return;
    decoded.clear();
    size_t consumed = 0;
    auto status =
        decoder_->feed(std::string_view(static_cast<const char*>(chunk.iov_base), chunk.iov_len),
                       &decoded, &consumed);
    if (status == DataDecoder::Status::kBareLf) {
      abort_transaction();
      reply("451 4.5.0 See https://cr.yp.to/docs/smtplf.html.");
      close_after_flush();
      return;
    }
    if (decoder_->too_big() || decoder_->too_many_hops()) {
      // The message will be refused: stop feeding qmail-queue now, read on to the dot.
      if (queue_request_) abort_transaction();
    } else if (message_pipe_ && !decoded.empty()) {
      message_pipe_->write(decoded);
      if (virus_scan_) virus_scan_->feed(decoded);
    }
    evbuffer_drain(input, consumed);
    if (status == DataDecoder::Status::kEnd) {
      end_of_data();
      return;
    }
  }
}

void Session::end_of_data() {
  data_complete_ = true;
  phase_ = Phase::kCommands;  // what follows the dot is commands again
  if (decoder_->too_big()) {
    abort_transaction();
    queue_result_ = {"552", "sorry, that message size exceeds my databytes limit (#5.3.4)"};
  } else if (decoder_->too_many_hops()) {
    abort_transaction();
    queue_result_ = {"554", "too many hops, this message is looping (#5.4.6)"};
  }
  if (queue_result_) {
    finish_transaction();
    return;
  }
  if (virus_scan_) virus_scan_->finish();
  set_busy(true);
  if (message_pipe_) message_pipe_->flush();  // an empty body: the Received line is all
  commit_when_ready();  // or on_pipe_progress, once the last byte reached qmail-queue
}

void Session::commit_when_ready() {
  if (!data_complete_ || committed_ || queue_result_) return;
  if (message_pipe_ && message_pipe_->pending() > 0) return;  // on_pipe_progress comes back
  if (virus_scan_) return;  // on_scan_verdict comes back: nothing is queued before clamd's OK
  commit_envelope();
}

void Session::stop_writing_message() {
  message_pipe_.reset();
  message_closed_ = true;
}

void Session::commit_envelope() {
  stop_writing_message();  // qmail-queue reads the envelope only after EOF on the message
  if (!queue_request_) {
    if (!queue_result_) queue_result_ = {"451", "qq temporary problem (#4.3.0)"};
    finish_transaction();
    return;
  }
  committed_ = true;
  ipc::Frame frame(protocol::kQueueCommit, 0);
  size_t budget = 0;
  for (const auto& recipient : envelope_recipients()) {
    if (budget + recipient.size() > kEnvelopeFrameBudget) {
      frame.type = protocol::kQueueRecipients;
      context_.queue->send(*queue_request_, std::move(frame));
      frame = ipc::Frame(protocol::kQueueCommit, 0);
      budget = 0;
    }
    frame.add("to", recipient);
    budget += recipient.size() + 4;
  }
  frame.attrs.insert(frame.attrs.begin(), {"from", sender_});
  if (!context_.queue->send(*queue_request_, std::move(frame)) && !queue_result_) {
    queue_result_ = {"451", "qq temporary problem (#4.3.0)"};
    finish_transaction();
  }
}

void Session::abort_transaction() {
  virus_scan_.reset();
  if (queue_request_) {
    context_.queue->send(*queue_request_, ipc::Frame(protocol::kQueueAbort, 0));
    context_.queue->cancel(*queue_request_);
    queue_request_.reset();
  }
  stop_writing_message();
}

void Session::finish_transaction() {
  auto [code, text] = *queue_result_;
  std::string line;
  if (code == "250") {
    line = "250 2.6.0 " + text;
    log::info("session ", id_, ": message accepted for ", recipients_.size(),
              " recipient(s): ", text);
  } else {
    line = qmail_reply(code, text);
    log::info("session ", id_, ": message refused: ", text);
  }
  // qmail-md tarpits a virus before its 554; the TARPIT: line names the transaction.
  std::optional<std::string> virus = std::exchange(virus_, std::nullopt);
  std::string context;
  if (virus) context = decision_context(sender_, recipients_.empty() ? "" : recipients_.front());
  if (queue_request_) context_.queue->cancel(*queue_request_);
  queue_request_.reset();
  decoder_.reset();
  queue_result_.reset();
  virus_scan_.reset();
  scanner_socket_.reset();
  data_complete_ = false;
  committed_ = false;
  reset_transaction();
  phase_ = Phase::kCommands;
  auto answer = [this, line] {
    reply(line);
    flush();
    set_busy(false);
    process_input();
  };
  if (virus) {
    tarpit("virus \"" + *virus + "\"", context, answer);
    return;
  }
  answer();
}

void Session::on_pipe_progress() {
  if (data_complete_) {
    commit_when_ready();
    return;
  }
  process_input();  // qmail-queue caught up: decode more of the client's input
}

void Session::on_pipe_failed(bool timed_out) {
  if (timed_out) {
    // qmail-queue stopped reading: give up rather than queue a truncated message.
    log::warn("session ", id_, ": qmail-queue stopped reading the message");
    abort_transaction();
    queue_result_ = {"451", "qq timeout (#4.3.0)"};
    if (data_complete_) finish_transaction();
    return;
  }
  // EPIPE: qmail-queue exited; queue-bridge will report how, and we read on to the dot.
  stop_writing_message();
  commit_when_ready();
}

void Session::request_scanner(ipc::Frame& open) {
  scan_requested_ = !settings_.spam.clamd.empty();
  scanner_socket_.reset();
  scanner_unavailable_.clear();
  virus_scan_.reset();
  virus_.reset();
  if (scan_requested_) open.add("clamd", settings_.spam.clamd);
}

bool Session::start_scan() {
  if (!scan_requested_) return true;
  if (!scanner_socket_) {
    std::string why =
        scanner_unavailable_.empty() ? "queue-bridge sent no clamd socket" : scanner_unavailable_;
    if (settings_.listener.clamd_accept_unavailable) {
      log::warn("session ", id_, ": CLAMD: ", why,
                ": the message goes unscanned (clamd_unavailable = accept)");
      return true;
    }
    log::warn("session ", id_, ": CLAMD: ", why,
              ": transaction refused (clamd_unavailable = tempfail)");
    abort_transaction();
    reply(qmail_reply("451", kScannerUnavailable));
    set_busy(false);
    process_input();
    return false;
  }
  virus_scan_ = std::make_unique<VirusScan>(
      context_.base, std::move(scanner_socket_), settings_.listener.clamd_timeout,
      kPipeHighWater / 2, [this](const ScanVerdict& verdict) { on_scan_verdict(verdict); },
      [this] {
        if (phase_ == Phase::kData) process_input();  // clamd caught up: decode more
      });
  return true;
}

void Session::on_scan_verdict(const ScanVerdict& verdict) {
  size_t scanned = virus_scan_ ? virus_scan_->fed() : 0;
  virus_scan_.reset();  // it reports last, so it may go inside its own callback
  switch (verdict.kind) {
    case ScanVerdict::Kind::kClean:
      log::debug("session ", id_, ": CLAMD: clean, ", scanned, " bytes scanned");
      break;
    case ScanVerdict::Kind::kVirus:
      log::info("session ", id_, ": CLAMD: virus \"", verdict.text, "\" was found!");
      abort_transaction();
      if (!queue_result_) {
        queue_result_ = {"554", "5.7.7 your email contains the virus \"" + verdict.text + "\"!"};
        virus_ = verdict.text;
      }
      break;
    case ScanVerdict::Kind::kError:
      if (settings_.listener.clamd_accept_unavailable) {
        log::warn("session ", id_, ": CLAMD: ", verdict.text,
                  ": the message goes unscanned (clamd_unavailable = accept)");
        break;
      }
      log::warn("session ", id_, ": CLAMD: ", verdict.text,
                ": message refused (clamd_unavailable = tempfail)");
      abort_transaction();
      if (!queue_result_) queue_result_ = {"451", kScannerUnavailable};
      break;
  }
  if (!data_complete_) return;  // reading on to the dot; end_of_data answers
  if (queue_result_) {
    finish_transaction();
  } else {
    commit_when_ready();
  }
}

}  // namespace sppd::smtpd
