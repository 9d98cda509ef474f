// API keys and used-up sign-in tokens (ledger_impl.h).
#include "ledger/ledger_impl.h"

#include <openssl/rand.h>

#include "common/sha256.h"
#include "common/strings.h"
#include "ledger/append.h"
#include "ledger/store.h"

namespace assent::internal {

Status LedgerImpl::ApplyKey(uint64_t position, const std::string& action, const std::string& name,
                        const std::string& role, const std::string& key_sha256,
                        Timestamp recorded_at) {
  std::unique_lock lock(keys_mu_);
  if (action == "create") {
    auto r = ParseRole(role);
    if (!r) return InvalidArgumentError("unknown role '" + role + "'");
    keys_by_hash_[key_sha256] = ApiKey{name, *r, position, false, recorded_at};
    return OkStatus();
  }
  if (action == "revoke") {
    for (auto& [hash, key] : keys_by_hash_) {
      if (key.name == name && !key.revoked) {
        key.revoked = true;
        return OkStatus();
      }
    }
    return NotFoundError("no live key named '" + name + "'");
  }
  return InvalidArgumentError("unknown key action '" + action + "'");
}

Result<std::string> LedgerImpl::CreateKey(Role role, std::string name) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  if (name.empty() || name.size() > 100 || !ValidUtf8(name) ||
      name.find_first_of("\r\n\t") != std::string::npos) {
    return InvalidArgumentError("a key name must be 1-100 printable characters");
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  {
    std::shared_lock lock(keys_mu_);
    for (const auto& [hash, key] : keys_by_hash_) {
      if (key.name == name && !key.revoked) {
        return AlreadyExistsError("a live key is already named '" + name + "'");
      }
    }
  }
  uint8_t raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return InternalError("no secure randomness available");
  std::string secret = "assent_" + ToHex(raw, sizeof raw);
  KeyFields f{"create", name, std::string(RoleName(role)), ToHex(Sha256(secret))};
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return MakeKeyEntry(pos, now, f);
  }));
  ASSENT_RETURN_IF_ERROR(ApplyKey(at.first, f.action, f.name, f.role, f.key_sha256, at.second));
  return secret;
}

Status LedgerImpl::SpendToken(std::string_view action, std::string_view token_sha256,
                          Timestamp expires) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  std::string raw;
  if ((action != "redeem" && action != "end") || token_sha256.size() != 64 ||
      !ParseHex(token_sha256, &raw)) {
    return InvalidArgumentError("a used-up token is 'redeem' or 'end' and 64 hex digits");
  }
  if (!TimeInRange(expires) || expires <= clock_()) {
    return InvalidArgumentError("a used-up token's expiry must lie ahead, within the storable range");
  }
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  if (TokenSpent(token_sha256)) return AlreadyExistsError("the token was used already");
  TokenFields f{std::string(action), std::string(token_sha256), expires};
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return MakeTokenEntry(pos, now, f);
  }));
  (void)at;
  ApplyToken(f.token_sha256, f.expires);
  return OkStatus();
}

bool LedgerImpl::TokenSpent(std::string_view token_sha256) const {
  std::lock_guard lock(tokens_mu_);
  return tokens_.find(std::string(token_sha256)) != tokens_.end();
}

size_t LedgerImpl::tokens_remembered() const {
  std::lock_guard lock(tokens_mu_);
  return tokens_.size();
}

Status LedgerImpl::RevokeKey(std::string_view name) {
  if (read_only_) return FailedPreconditionError("the ledger was opened read-only");
  ASSENT_ASSIGN_OR_RETURN(auto append, AppendLock::Take(this));
  KeyFields f{"revoke", std::string(name), "", ""};
  {
    std::shared_lock lock(keys_mu_);
    bool found = false;
    for (const auto& [hash, key] : keys_by_hash_) {
      if (key.name == name && !key.revoked) {
        found = true;
        f.role = std::string(RoleName(key.role));
        f.key_sha256 = hash;
      }
    }
    if (!found) return NotFoundError("no live key named '" + std::string(name) + "'");
  }
  ASSENT_ASSIGN_OR_RETURN(auto at, AppendEntryLocked(*append, [&](uint64_t pos, Timestamp now) {
    return MakeKeyEntry(pos, now, f);
  }));
  return ApplyKey(at.first, f.action, f.name, f.role, f.key_sha256);
}

std::vector<ApiKey> LedgerImpl::Keys() const {
  std::shared_lock lock(keys_mu_);
  std::vector<ApiKey> out;
  for (const auto& [hash, key] : keys_by_hash_) out.push_back(key);
  std::sort(out.begin(), out.end(), [](const ApiKey& a, const ApiKey& b) {
    return a.position < b.position;
  });
  return out;
}

std::optional<ApiKey> LedgerImpl::Authenticate(std::string_view secret) const {
  // Look up by the secret's hash: the comparison never touches the secret itself.
  const std::string hash = ToHex(Sha256(secret));
  std::shared_lock lock(keys_mu_);
  auto it = keys_by_hash_.find(hash);
  if (it == keys_by_hash_.end() || it->second.revoked) return std::nullopt;
  return it->second;
}

}  // namespace assent::internal
