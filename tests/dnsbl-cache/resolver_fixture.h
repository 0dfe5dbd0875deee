// run_guarded() and FakeDnsTest: the libevent loop, the fake DNS server and a Resolver pointed at
// it with a short timeout; the base of the resolver, PTR and DNSBL lookup tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "dnsbl-cache/resolver.h"
#include "fake_dns.h"

namespace sppd::dnsbl_cache::dns_test {

// Runs the loop until a callback breaks it, or for 5 s at the most.
inline void run_guarded(event_base* base) {
  timeval guard{5, 0};
  event_base_loopexit(base, &guard);
  event_base_dispatch(base);
}

class FakeDnsTest : public ::testing::Test {
 protected:
  FakeDnsTest() : base_(event_base_new()), dns_(base_.get()) {
    ResolverOptions options;
    options.servers = dns_.address();
    options.timeout_ms = 300;
    resolver_ = std::make_unique<Resolver>(base_.get(), options);
  }

  // Runs the loop until the answer callbacks (the last one breaks the loop) have counted
  // `want` answers in `done`, or for 5 s at the most.
  void wait_for_answers(const size_t& done, size_t want) {
    if (done < want) run_guarded(base_.get());
  }

  EventBasePtr base_;
  FakeDns dns_;
  std::unique_ptr<Resolver> resolver_;
};

}  // namespace sppd::dnsbl_cache::dns_test
