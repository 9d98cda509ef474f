// SHA-256 for evidence (entry hashes, content hashes), via OpenSSL's EVP one-shot digest.
#ifndef ASSENT_COMMON_SHA256_H_
#define ASSENT_COMMON_SHA256_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace assent {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest Sha256(std::string_view data);

// Lower-case hex.
std::string ToHex(const uint8_t* data, size_t n);
inline std::string ToHex(const Sha256Digest& d) { return ToHex(d.data(), d.size()); }

// Parses 64 hex digits; false on anything else.
bool ParseSha256Hex(std::string_view hex, Sha256Digest* out);
// Lower-case hex of any length (even) into bytes; false on anything else.
bool ParseHex(std::string_view hex, std::string* bytes);

}  // namespace assent

#endif  // ASSENT_COMMON_SHA256_H_
