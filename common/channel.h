// Channel: one end of an AF_UNIX SOCK_SEQPACKET socket carrying sppd frames, driven by a
// libevent loop. Used by every program for every IPC link (master<->child, worker<->helper).
// Sends never block (an outbound queue waits for writability); a received frame that fails
// validation, or the peer closing, ends the channel with a reason given to on_close.
#pragma once

#include <deque>
#include <functional>
#include <string>

#include "common/event.h"
#include "common/fd.h"
#include "common/frame.h"

namespace sppd::ipc {

class Channel {
 public:
  using FrameHandler = std::function<void(Frame&&)>;
  // Called once when the channel ends: peer closed, I/O error or a malformed frame.
  using CloseHandler = std::function<void(const std::string& why)>;

  Channel(event_base* base, UniqueFd fd, FrameHandler on_frame, CloseHandler on_close);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Queues a frame (and its descriptor, which the channel then owns). Returns false if the
  // frame cannot be encoded or the channel is closed; the reason is logged.
  bool send(Frame&& frame);
  bool open() const { return fd_.get() >= 0; }
  int fd() const { return fd_.get(); }
  // Closes now without calling on_close.
  void close();

 private:
  struct Outbound {
    std::string bytes;
    UniqueFd fd;
  };
  static void on_event(evutil_socket_t, short what, void* self);
  void read_frames();
  void write_frames();
  void fail(const std::string& why);
  void update_write_interest();

  UniqueFd fd_;
  EventPtr read_event_;
  EventPtr write_event_;
  bool write_pending_ = false;
  std::deque<Outbound> outbound_;
  FrameHandler on_frame_;
  CloseHandler on_close_;
};

// Creates a connected SOCK_SEQPACKET pair (close-on-exec, non-blocking); throws on failure.
std::pair<UniqueFd, UniqueFd> make_socketpair();

}  // namespace sppd::ipc
