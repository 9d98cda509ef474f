// Signed checkpoints in the C2SP tlog-checkpoint format: a signed note whose text is
//   <origin>\n<tree size>\n<base64 root hash>\n
// followed by a blank line and one signature line per signer:
//   — <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n
// The key id is the first 4 bytes of SHA-256(<key name> || "\n" || 0x01 || <public key>); the
// verifier key is written <key name>+<hex key id>+<base64(0x01 || public key)>. Ed25519 from
// libsodium. The signing key lives in DATA_DIR/audit.key (mode 0600), created on first use.
#ifndef ASSENT_AUDIT_CHECKPOINT_H_
#define ASSENT_AUDIT_CHECKPOINT_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "assent/result.h"
#include "audit/merkle.h"

namespace assent::audit {

struct SigningKey {
  std::string name;  // also the checkpoints' origin
  std::array<unsigned char, 32> public_key{};
  std::array<unsigned char, 64> secret_key{};
  // A secret for another use, derived from this key (HMAC-SHA-256 of `label` under the secret
  // key): every node holding the ledger's key derives the same one; it reveals nothing of it.
  std::array<uint8_t, 32> DeriveSecret(std::string_view label) const;
};

struct VerifierKey {
  std::string name;
  std::array<unsigned char, 4> key_id{};
  std::array<unsigned char, 32> public_key{};
};

// Loads DIR/audit.key, or creates it (0600) when missing and `create` is set.
Result<SigningKey> LoadSigningKey(const std::string& dir, bool create);
// The same for a key file anywhere (kNotFound when missing and not `create`). Two processes
// creating the same file at once end up with one key.
Result<SigningKey> LoadSigningKeyFile(const std::string& path, bool create);
std::string VerifierKeyText(const SigningKey& key);
// Parses "<name>+<hex id>+<base64>" or a file holding it. kInvalidArgument on anything else.
Result<VerifierKey> ParseVerifierKey(std::string_view text);

// The signed note for a tree of `size` leaves with `root`.
std::string SignCheckpoint(const SigningKey& key, uint64_t size, const Hash& root);

struct Checkpoint {
  std::string origin;
  uint64_t size = 0;
  Hash root{};
};
// Verifies the note's signature by `key` and parses it. kInvalidArgument (bad form) or
// kPermissionDenied (no valid signature by that key).
Result<Checkpoint> OpenCheckpoint(std::string_view note, const VerifierKey& key);

}  // namespace assent::audit

#endif  // ASSENT_AUDIT_CHECKPOINT_H_
