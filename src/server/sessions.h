// Sign-in links and browser sessions (sessions.cc).
#ifndef ASSENT_SERVER_SESSIONS_H_
#define ASSENT_SERVER_SESSIONS_H_

#include <array>
#include <mutex>
#include <optional>
#include <string>

#include "assent/ledger.h"

namespace assent::server {

// A person's or an account admin's browser session, minted by a service through a one-time
// link and carried by an HttpOnly, SameSite=Strict cookie; changes need its CSRF token.
struct WebSession {
  PartyKind kind = PartyKind::kSubject;
  std::string party;
  std::string csrf;
  Timestamp expires = 0;
  // The API key that minted the sign-in link ("key:NAME"), or "demo" for serve --demo's
  // links: every event recorded through the session names it.
  std::string minted_by;
};

// Sign-in links and sessions as signed, self-contained tokens (sessions.cc): every node given
// the same key (derived from the ledger's signing key, which every node of a ledger shares)
// accepts the links and sessions any of them minted, so signing in works behind a load
// balancer and survives a restart. A token is hex of
//   type(1: 'L' link | 'S' session) kind(1) expires(8, big-endian µs) nonce(16)
//   len(minted_by)(2) minted_by party
// followed by hex of its HMAC-SHA-256 under the key; the CSRF token of a session is derived from
// it (HMAC of "csrf" + token). A redeemed link and an ended session are recorded in the ledger
// (Ledger::SpendToken: a token entry naming the SHA-256 of the nonce), so a link works once
// and a logout holds on every node; a session is checked after catching up with the shared
// store, so a logout on one node is seen by the next request on any other.
// Thread-safe.
class Sessions {
 public:
  static constexpr Duration kLinkLifetime = 10 * 60 * kMicrosPerSecond;
  static constexpr Duration kSessionLifetime = 60 * 60 * kMicrosPerSecond;
  // With a random key: tokens work on this process only until SetKey.
  explicit Sessions(Ledger* ledger);
  void SetKey(const std::array<uint8_t, 32>& key);
  // A one-time link token for the party, valid for kLinkLifetime.
  std::string MintLink(PartyKind kind, std::string party, Timestamp now,
                       std::string minted_by = "demo");
  // Exchanges a link token (once, across every node) for a session id. kNotFound when forged,
  // used or expired; the ledger's error (kUnavailable, ...) when it could not be recorded.
  Result<std::string> Redeem(const std::string& token, Timestamp now);
  std::optional<WebSession> Find(const std::string& session_id, Timestamp now);
  // Ends a session (logout) on every node. kNotFound when it was not a live session; the
  // ledger's error when the end could not be recorded (the session then still works).
  Status End(const std::string& session_id, Timestamp now);

 private:
  std::string Sign(char type, const WebSession& s) const;
  // The token's claims and, in `*id`, the hex SHA-256 of its nonce (what the ledger records).
  std::optional<WebSession> Open(char type, const std::string& token, Timestamp now,
                                 std::string* id) const;
  Ledger* ledger_;
  mutable std::mutex mu_;
  std::array<uint8_t, 32> key_{};
  bool keyed_ = false;  // no randomness for the key and none set: no token is valid
};

}  // namespace assent::server

#endif  // ASSENT_SERVER_SESSIONS_H_
