// SHA-256 through OpenSSL (hardware-accelerated where the CPU has SHA extensions).
#include "common/sha256.h"

#include <cstring>

#include <openssl/evp.h>

#include <cstdlib>

namespace assent {

namespace {

// The digest is fetched once and each thread keeps its own context: OpenSSL 3 otherwise
// looks the algorithm up (under a lock) on every call.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return m ? m : EVP_sha256();
  }();
  return md;
}

struct Context {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

Sha256Digest Sha256(std::string_view data) {
  thread_local Context c;
  Sha256Digest d{};
  unsigned int len = 0;
  if (!c.ctx || EVP_DigestInit_ex(c.ctx, Sha256Md(), nullptr) != 1 ||
      EVP_DigestUpdate(c.ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(c.ctx, d.data(), &len) != 1 || len != d.size()) {
    std::abort();  // OpenSSL cannot compute SHA-256: nothing sensible can go on
  }
  return d;
}

std::string ToHex(const uint8_t* data, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 15];
  }
  return out;
}

bool ParseHex(std::string_view hex, std::string* bytes) {
  if (hex.size() % 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  bytes->clear();
  bytes->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

bool ParseSha256Hex(std::string_view hex, Sha256Digest* out) {
  std::string bytes;
  if (hex.size() != 64 || !ParseHex(hex, &bytes)) return false;
  std::memcpy(out->data(), bytes.data(), 32);
  return true;
}

}  // namespace assent
