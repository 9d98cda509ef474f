// C2SP signed-note checkpoints with Ed25519 (libsodium).
#include "audit/checkpoint.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/strings.h"

namespace assent::audit {
namespace {

constexpr std::string_view kDash = "\xE2\x80\x94 ";  // U+2014 and a space

std::array<unsigned char, 4> KeyId(const std::string& name, const unsigned char* pk) {
  std::string data = name + "\n";
  data.push_back('\x01');
  data.append(reinterpret_cast<const char*>(pk), 32);
  Sha256Digest d = Sha256(data);
  return {d[0], d[1], d[2], d[3]};
}

}  // namespace

Result<SigningKey> LoadSigningKey(const std::string& dir, bool create) {
  auto key = LoadSigningKeyFile(dir + "/audit.key", create);
  if (!key && key.error().code == ErrorCode::kNotFound) {
    return NotFoundError("no audit key in '" + dir + "' yet (assent audit key creates it)");
  }
  return key;
}

Result<SigningKey> LoadSigningKeyFile(const std::string& path, bool create) {
  if (sodium_init() < 0) return InternalError("libsodium cannot initialise");
  SigningKey key;
  std::ifstream in(path);
  if (in) {
    std::string name, b64, raw;
    std::getline(in, name);
    std::getline(in, b64);
    if (name.empty() || !Base64Decode(b64, &raw) || raw.size() != 64) {
      return DataLossError(path + " is not an Assent audit key");
    }
    key.name = name;
    std::memcpy(key.secret_key.data(), raw.data(), 64);
    crypto_sign_ed25519_sk_to_pk(key.public_key.data(), key.secret_key.data());
    return key;
  }
  if (!create) return NotFoundError("no audit key at " + path + " (assent audit key creates it)");
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  crypto_sign_keypair(key.public_key.data(), key.secret_key.data());
  key.name = "assent-ledger-" + ToHex(Sha256(std::string_view(
                                    reinterpret_cast<const char*>(key.public_key.data()), 32)))
                                    .substr(0, 12);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 && errno == EEXIST) return LoadSigningKeyFile(path, false);  // made meanwhile
  if (fd < 0) return MakeError(ErrorCode::kUnavailable, "cannot create " + path);
  std::string text = key.name + "\n" +
                     Base64Encode(std::string_view(
                         reinterpret_cast<const char*>(key.secret_key.data()), 64)) +
                     "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    return MakeError(ErrorCode::kUnavailable, "cannot write " + path);
  }
  return key;
}

std::string VerifierKeyText(const SigningKey& key) {
  auto id = KeyId(key.name, key.public_key.data());
  std::string data(1, '\x01');
  data.append(reinterpret_cast<const char*>(key.public_key.data()), 32);
  return key.name + "+" + ToHex(id.data(), 4) + "+" + Base64Encode(data);
}

Result<VerifierKey> ParseVerifierKey(std::string_view text) {
  std::string t(text);
  if (t.find('+') == std::string::npos) {  // a file holding the key
    std::ifstream in(t);
    if (!in) return InvalidArgumentError("'" + t + "' is neither a verifier key nor a readable file");
    std::getline(in, t);
  }
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ' || t.back() == '\r')) t.pop_back();
  size_t a = t.find('+'), b = t.find('+', a + 1);
  if (a == std::string::npos || b == std::string::npos) {
    return InvalidArgumentError("a verifier key reads <name>+<hex key id>+<base64 key>");
  }
  VerifierKey k;
  k.name = t.substr(0, a);
  std::string raw;
  if (!Base64Decode(t.substr(b + 1), &raw) || raw.size() != 33 || raw[0] != '\x01') {
    return InvalidArgumentError("the verifier key is not an Ed25519 key");
  }
  std::memcpy(k.public_key.data(), raw.data() + 1, 32);
  k.key_id = KeyId(k.name, k.public_key.data());
  if (ToHex(k.key_id.data(), 4) != t.substr(a + 1, b - a - 1)) {
    return InvalidArgumentError("the verifier key's id does not match its name and key");
  }
  return k;
}

std::string SignCheckpoint(const SigningKey& key, uint64_t size, const Hash& root) {
  std::string text = key.name + "\n" + std::to_string(size) + "\n" +
                     Base64Encode(std::string_view(reinterpret_cast<const char*>(root.data()), 32)) +
                     "\n";
  unsigned char sig[64];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(text.data()),
                       text.size(), key.secret_key.data());
  auto id = KeyId(key.name, key.public_key.data());
  std::string blob(reinterpret_cast<const char*>(id.data()), 4);
  blob.append(reinterpret_cast<const char*>(sig), 64);
  return text + "\n" + std::string(kDash) + key.name + " " + Base64Encode(blob) + "\n";
}

Result<Checkpoint> OpenCheckpoint(std::string_view note, const VerifierKey& key) {
  if (sodium_init() < 0) return InternalError("libsodium cannot initialise");
  size_t split = note.find("\n\n");
  if (split == std::string_view::npos) return InvalidArgumentError("a signed note needs a blank line");
  std::string_view text = note.substr(0, split + 1);
  std::string_view sigs = note.substr(split + 2);
  bool signed_ok = false;
  while (!sigs.empty()) {
    size_t nl = sigs.find('\n');
    std::string_view line = sigs.substr(0, nl);
    sigs = nl == std::string_view::npos ? std::string_view() : sigs.substr(nl + 1);
    if (!line.starts_with(kDash)) return InvalidArgumentError("malformed signature line");
    line.remove_prefix(kDash.size());
    size_t sp = line.rfind(' ');
    if (sp == std::string_view::npos) return InvalidArgumentError("malformed signature line");
    std::string blob;
    if (line.substr(0, sp) != key.name || !Base64Decode(line.substr(sp + 1), &blob) ||
        blob.size() != 68 || std::memcmp(blob.data(), key.key_id.data(), 4) != 0) {
      continue;  // another signer
    }
    signed_ok = crypto_sign_verify_detached(
                    reinterpret_cast<const unsigned char*>(blob.data() + 4),
                    reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                    key.public_key.data()) == 0;
    if (signed_ok) break;
  }
  if (!signed_ok) {
    return MakeError(ErrorCode::kPermissionDenied, "the checkpoint has no valid signature by " +
                                                       key.name);
  }
  Checkpoint c;
  std::string t(text);
  std::istringstream in(t);
  std::string size, root64, root;
  std::getline(in, c.origin);
  std::getline(in, size);
  std::getline(in, root64);
  try {
    c.size = std::stoull(size);
  } catch (const std::exception&) {
    return InvalidArgumentError("the checkpoint's tree size is not a number");
  }
  if (!Base64Decode(root64, &root) || root.size() != 32) {
    return InvalidArgumentError("the checkpoint's root is not a base64 SHA-256");
  }
  std::memcpy(c.root.data(), root.data(), 32);
  return c;
}

std::array<uint8_t, 32> SigningKey::DeriveSecret(std::string_view label) const {
  std::array<uint8_t, 32> out{};
  unsigned int n = 0;
  HMAC(EVP_sha256(), secret_key.data(), static_cast<int>(secret_key.size()),
       reinterpret_cast<const unsigned char*>(label.data()), label.size(), out.data(), &n);
  return out;
}

}  // namespace assent::audit
