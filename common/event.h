// RAII owners for libevent handles, so no event, base or bufferevent is ever freed by hand.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <memory>

namespace sppd {

struct EventBaseFree {
  void operator()(event_base* b) const { event_base_free(b); }
};
struct EventFree {
  void operator()(event* e) const { event_free(e); }
};
struct BuffereventFree {
  void operator()(bufferevent* b) const { bufferevent_free(b); }
};
struct EvbufferFree {
  void operator()(evbuffer* b) const { evbuffer_free(b); }
};

using EventBasePtr = std::unique_ptr<event_base, EventBaseFree>;
using EventPtr = std::unique_ptr<event, EventFree>;
using BuffereventPtr = std::unique_ptr<bufferevent, BuffereventFree>;
using EvbufferPtr = std::unique_ptr<evbuffer, EvbufferFree>;

}  // namespace sppd
