// Sign-in links and sessions as signed, self-contained tokens (the format is in api.h): any node
// with the ledger's key accepts what another minted; spent links and ended sessions are
// recorded in the ledger, so every node knows them until they expire.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "common/sha256.h"
#include "server/api.h"

namespace assent::server {
namespace {

std::array<uint8_t, 32> Mac(const std::array<uint8_t, 32>& key, std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &n);
  return out;
}

constexpr size_t kMaxToken = 8192;  // hex characters: ids are at most 1 KiB

}  // namespace

Sessions::Sessions(Ledger* ledger) : ledger_(ledger) {
  keyed_ = RAND_bytes(key_.data(), static_cast<int>(key_.size())) == 1;
}

void Sessions::SetKey(const std::array<uint8_t, 32>& key) {
  std::lock_guard lock(mu_);
  key_ = key;
  keyed_ = true;
}

std::string Sessions::Sign(char type, const WebSession& s) const {
  std::string raw;
  raw.push_back(type);
  raw.push_back(s.kind == PartyKind::kSubject ? 's' : 'a');
  for (int i = 7; i >= 0; --i) raw.push_back(static_cast<char>(static_cast<uint64_t>(s.expires) >> (8 * i)));
  uint8_t nonce[16];
  if (RAND_bytes(nonce, sizeof nonce) != 1) std::memset(nonce, 0, sizeof nonce);
  raw.append(reinterpret_cast<const char*>(nonce), sizeof nonce);
  const size_t n = std::min<size_t>(s.minted_by.size(), 0xffff);
  raw.push_back(static_cast<char>(n >> 8));
  raw.push_back(static_cast<char>(n & 0xff));
  raw.append(s.minted_by, 0, n);
  raw += s.party;
  std::array<uint8_t, 32> key;
  {
    std::lock_guard lock(mu_);
    key = key_;
  }
  const auto mac = Mac(key, raw);
  return ToHex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size()) +
         ToHex(mac.data(), mac.size());
}

std::optional<WebSession> Sessions::Open(char type, const std::string& token, Timestamp now,
                                         std::string* id) const {
  std::string raw;
  if (token.size() > kMaxToken || token.size() < 2 * (1 + 1 + 8 + 16 + 2 + 32) ||
      !ParseHex(token, &raw)) {
    return std::nullopt;
  }
  const std::string_view body(raw.data(), raw.size() - 32);
  std::array<uint8_t, 32> key;
  {
    std::lock_guard lock(mu_);
    if (!keyed_) return std::nullopt;
    key = key_;
  }
  const auto mac = Mac(key, body);
  if (CRYPTO_memcmp(mac.data(), raw.data() + body.size(), 32) != 0) return std::nullopt;
  if (body[0] != type || (body[1] != 's' && body[1] != 'a')) return std::nullopt;
  uint64_t expires = 0;
  for (int i = 0; i < 8; ++i) expires = expires << 8 | static_cast<uint8_t>(body[2 + i]);
  if (static_cast<Timestamp>(expires) <= now) return std::nullopt;
  *id = ToHex(Sha256(body.substr(10, 16)));
  const size_t n = static_cast<uint8_t>(body[26]) << 8 | static_cast<uint8_t>(body[27]);
  if (28 + n > body.size()) return std::nullopt;
  WebSession s;
  s.kind = body[1] == 's' ? PartyKind::kSubject : PartyKind::kAccount;
  s.expires = static_cast<Timestamp>(expires);
  s.minted_by = std::string(body.substr(28, n));
  s.party = std::string(body.substr(28 + n));
  if (s.party.empty()) return std::nullopt;
  return s;
}

std::string Sessions::MintLink(PartyKind kind, std::string party, Timestamp now,
                               std::string minted_by) {
  WebSession s{kind, std::move(party), "", now + kLinkLifetime, std::move(minted_by)};
  return Sign('L', s);
}

Result<std::string> Sessions::Redeem(const std::string& token, Timestamp now) {
  std::string id;
  auto link = Open('L', token, now, &id);
  if (!link) return NotFoundError("the link is not one of ours, or it expired");
  if (auto st = ledger_->SpendToken("redeem", id, link->expires); !st) {
    if (st.error().code == ErrorCode::kAlreadyExists) {
      return NotFoundError("the link was used already");
    }
    return std::unexpected(st.error());
  }
  WebSession s = std::move(*link);
  s.expires = now + kSessionLifetime;
  return Sign('S', s);
}

std::optional<WebSession> Sessions::Find(const std::string& session_id, Timestamp now) {
  std::string id;
  auto s = Open('S', session_id, now, &id);
  if (!s) return std::nullopt;
  // A logout on another node: seen here once caught up (when the store cannot be reached, what
  // this node applied last decides; writes fail then anyway).
  (void)ledger_->CatchUp();
  if (ledger_->TokenSpent(id)) return std::nullopt;  // signed out
  std::array<uint8_t, 32> key;
  {
    std::lock_guard lock(mu_);
    key = key_;
  }
  const auto csrf = Mac(key, "csrf" + session_id);
  s->csrf = ToHex(csrf.data(), csrf.size());
  return s;
}

Status Sessions::End(const std::string& session_id, Timestamp now) {
  std::string id;
  auto s = Open('S', session_id, now, &id);
  if (!s) return NotFoundError("not a live session");
  if (auto st = ledger_->SpendToken("end", id, s->expires); !st) {
    if (st.error().code == ErrorCode::kAlreadyExists) return NotFoundError("signed out already");
    return st;
  }
  return OkStatus();
}

}  // namespace assent::server
