// Transaction implementation (contract in transaction.h). Error policy: a failed envelope
// write is not fatal by itself (qmail-queue's exit status says what happened, exactly as
// qmail's flagerr); a timeout kills the process group and answers "qq timeout".
#include "queue-bridge/transaction.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "common/log.h"

namespace sppd::queue_bridge {
namespace {
// qmail.c reads at most this much custom error text (notqmail, sagredo, indimail alike).
constexpr size_t kMaxErrorText = 255;
}  // namespace

std::string build_envelope(std::string_view from, std::string_view recipients_records) {
  std::string envelope;
  envelope.reserve(from.size() + recipients_records.size() + 3);
  envelope.push_back('F');
  envelope.append(from);
  envelope.push_back('\0');
  envelope.append(recipients_records);
  envelope.push_back('\0');
  return envelope;
}

void append_recipient(std::string* records, std::string_view to) {
  records->push_back('T');
  records->append(to);
  records->push_back('\0');
}

Transaction::Transaction(event_base* base, QueueChild child, int queue_timeout,
                         FinishHandler on_finish)
    : pid_(child.pid),
      envelope_fd_(std::move(child.envelope_write)),
      error_fd_(std::move(child.error_read)),
      queue_timeout_(queue_timeout),
      on_finish_(std::move(on_finish)) {
  write_event_.reset(event_new(base, envelope_fd_.get(), EV_WRITE | EV_PERSIST, on_writable, this));
  timeout_event_.reset(evtimer_new(base, on_timeout, this));
}

Transaction::~Transaction() {
  // Only an in-flight transaction is killed here (shutdown); abort and timeout killed already,
  // and a finished one's pid may be reaped and reused by now.
  if (!finished_ && child_running_) kill_group();
}

void Transaction::add_recipients(const std::vector<std::string_view>& to) {
  for (auto address : to) append_recipient(&recipients_, address);
}

void Transaction::commit(std::string_view from, const std::vector<std::string_view>& to) {
  add_recipients(to);
  committed_ = true;
  envelope_ = build_envelope(from, recipients_);
  recipients_.clear();
  recipients_.shrink_to_fit();
  timeval timeout{queue_timeout_, 0};
  evtimer_add(timeout_event_.get(), &timeout);
  write_envelope();
}

void Transaction::on_writable(evutil_socket_t, short, void* self) {
  static_cast<Transaction*>(self)->write_envelope();
}

void Transaction::write_envelope() {
  while (envelope_fd_ && envelope_written_ < envelope_.size()) {
    ssize_t n = ::write(envelope_fd_.get(), envelope_.data() + envelope_written_,
                        envelope_.size() - envelope_written_);
    if (n > 0) {
      envelope_written_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // qmail-queue reads the envelope only after the message: wait for room in the pipe.
      event_add(write_event_.get(), nullptr);
      return;
    }
    // EPIPE: qmail-queue closed fd 1 (it exited or gave up); its exit status will tell.
    log::debug("qp ", pid_,
               ": envelope not delivered: ", n < 0 ? std::strerror(errno) : "short write");
    stop_envelope();
    return;
  }
  if (envelope_fd_) envelope_complete_ = true;
  stop_envelope();
}

void Transaction::stop_envelope() {
  if (write_event_) event_del(write_event_.get());
  envelope_fd_.reset();
  envelope_.clear();
  envelope_.shrink_to_fit();
}

void Transaction::on_timeout(evutil_socket_t, short, void* self) {
  auto* transaction = static_cast<Transaction*>(self);
  log::warn("qp ", transaction->pid_, ": qmail-queue still running after ",
            transaction->queue_timeout_, " s, killing it");
  transaction->kill_group();
  transaction->stop_envelope();
  transaction->error_fd_.reset();
  transaction->finish(timeout_verdict());
}

void Transaction::kill_group() {
  // A setuid qmail-queue runs as another user: EPERM. Closing our pipe ends then makes it
  // see EOF and exit without queueing (qmail-queue aborts on an incomplete envelope).
  if (kill(-pid_, SIGKILL) < 0 && errno != ESRCH) {
    log::debug("qp ", pid_, ": cannot kill process group: ", std::strerror(errno));
  }
}

void Transaction::child_exited(int wait_status) {
  child_running_ = false;
  if (finished_) return;
  std::string error_text = read_error_text();
  bool envelope_failed = !envelope_complete_;
  stop_envelope();
  evtimer_del(timeout_event_.get());
  finish(verdict_for_exit(wait_status, error_text, pid_, time(nullptr), envelope_failed));
}

std::string Transaction::read_error_text() {
  std::string text;
  if (!error_fd_) return text;
  char buffer[kMaxErrorText];
  while (text.size() < kMaxErrorText) {
    ssize_t n = ::read(error_fd_.get(), buffer, kMaxErrorText - text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF, or EAGAIN: a grandchild still holds the pipe open
    text.append(buffer, static_cast<size_t>(n));
  }
  error_fd_.reset();
  return text;
}

void Transaction::abort() {
  if (finished_) return;
  finished_ = true;
  evtimer_del(timeout_event_.get());
  stop_envelope();
  error_fd_.reset();
  if (child_running_) kill_group();
}

void Transaction::finish(const Verdict& verdict) {
  if (finished_) return;
  finished_ = true;
  FinishHandler handler = std::move(on_finish_);
  if (handler) handler(verdict);
}

}  // namespace sppd::queue_bridge
