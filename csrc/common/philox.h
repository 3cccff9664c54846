// Philox4x32-10 (Salmon et al., SC'11): counter-based, so a stream keyed by (seed, row, chunk) gives the same
// numbers whatever the thread count or tile order. Host and device.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/common.h"

namespace hardneg {

struct Philox4x32 {
  uint32_t key[2];
  uint32_t ctr[4];
  uint32_t out[4];
  int used;  // outputs of `out` already consumed

  HN_HD Philox4x32(uint64_t seed, uint64_t stream_hi, uint64_t stream_lo) {
    key[0] = static_cast<uint32_t>(seed);
    key[1] = static_cast<uint32_t>(seed >> 32);
    ctr[0] = 0;
    ctr[1] = static_cast<uint32_t>(stream_lo);
    ctr[2] = static_cast<uint32_t>(stream_hi);
    ctr[3] = static_cast<uint32_t>(stream_hi >> 32) ^ (static_cast<uint32_t>(stream_lo >> 32) * 0x9E3779B9u);
    used = 4;
  }

  HN_HD static void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
    uint64_t p = static_cast<uint64_t>(a) * b;
    hi = static_cast<uint32_t>(p >> 32);
    lo = static_cast<uint32_t>(p);
  }

  HN_HD void block() {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; ++r) {
      uint32_t hi0, lo0, hi1, lo1;
      mulhilo(0xD2511F53u, c0, hi0, lo0);
      mulhilo(0xCD9E8D57u, c2, hi1, lo1);
      uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
      c0 = n0; c1 = n1; c2 = n2; c3 = n3;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
    ++ctr[0];
    used = 0;
  }

  HN_HD uint32_t next_u32() {
    if (used == 4) block();
    return out[used++];
  }

  // Uniform double in (0, 1), 53 bits: never exactly 0 or 1.
  HN_HD double uniform() {
    uint64_t a = next_u32() >> 5, b = next_u32() >> 6;  // 27 + 26 bits
    return (static_cast<double>((a << 26) | b) + 0.5) * (1.0 / 9007199254740992.0);
  }
  HN_HD double exponential() { return -std::log(uniform()); }
  HN_HD double gumbel() { return -std::log(exponential()); }
};

}  // namespace hardneg
