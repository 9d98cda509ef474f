// CheckExport (export_check.h): reverses ExportLine / ExportLineResolved (ledger/entry.cc) to
// the canonical bytes, then checks hashes, density and checkpoints.
#include "audit/export_check.h"

#include <simdjson.h>

#include "audit/merkle.h"
#include "common/json_keys.h"
#include "common/json_writer.h"
#include "common/sha256.h"

namespace assent::audit {
namespace {

// The canonical bytes an export line was made from, or an error saying why it cannot be.
Result<std::string> CanonicalBytes(std::string_view line, simdjson::dom::object obj,
                                   std::string_view hash) {
  std::string body(line);
  auto strip_suffix = [&](const std::string& suffix) {
    if (!std::string_view(body).ends_with(suffix)) return false;
    body.erase(body.size() - suffix.size());
    return true;
  };
  std::string_view pseudonym, kind;
  bool erased = false;
  const bool is_consent = !obj["kind"].get_string().get(kind) && kind == "consent";
  const bool has_pseudonym = !obj["pseudonym"].get_string().get(pseudonym);
  if (is_consent && has_pseudonym) {
    JsonWriter w;
    w.String(pseudonym);
    if (!strip_suffix(",\"pseudonym\":" + w.Take() + "}")) {
      return InvalidArgumentError("\"pseudonym\" is not where an export puts it");
    }
    body += "}";
  } else if (is_consent && !obj["erased"].get_bool().get(erased) && erased) {
    if (!strip_suffix(",\"erased\":true}")) {
      return InvalidArgumentError("\"erased\" is not where an export puts it");
    }
    body += "}";
  }
  if (!strip_suffix(",\"hash\":\"" + std::string(hash) + "\"}")) {
    return InvalidArgumentError("\"hash\" is not where an export puts it");
  }
  body += "}";
  if (is_consent && has_pseudonym) {  // the plain id goes back to the pseudonym
    for (const char* party : {"subject", "account"}) {
      std::string_view id;
      if (obj[party].get_string().get(id)) continue;
      JsonWriter w;
      w.String(id);
      const std::string plain = "\"" + std::string(party) + "\":" + w.Take();
      const size_t at = body.find(plain);
      if (at == std::string::npos) return InvalidArgumentError("the party is not where it was");
      JsonWriter p;
      p.String(pseudonym);
      body.replace(at, plain.size(), "\"" + std::string(party) + "\":" + p.Take());
    }
  }
  return body;
}

}  // namespace

Result<ExportCheck> CheckExport(std::string_view text, std::string_view file,
                                const std::optional<VerifierKey>& key) {
  ExportCheck out;
  out.signatures_checked = key.has_value();
  simdjson::dom::parser parser;
  MerkleTree tree;
  uint64_t line_no = 0, expected = 0;
  bool from_start = false;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto where = [&](const std::string& why) {
      return InvalidArgumentError(std::string(file) + ":" + std::to_string(line_no) + ": " + why);
    };
    simdjson::dom::element doc;
    simdjson::dom::object obj;
    if (parser.parse(line.data(), line.size()).get(doc) || doc.get_object().get(obj)) {
      return where("not a JSON object");
    }
    if (auto dup = DuplicateKey(obj)) return where("the key \"" + std::string(*dup) + "\" appears twice");
    std::string_view hash;
    uint64_t position = 0;
    if (obj["hash"].get_string().get(hash) || obj["position"].get_uint64().get(position)) {
      return where("no \"hash\" and \"position\": this is not a ledger export, so it cannot be "
                   "checked (import history from another system with --rehash, which records "
                   "that you vouch for it)");
    }
    if (expected == 0) {
      expected = position;
      from_start = position == 1;
    }
    if (position != expected) {
      return where("position " + std::to_string(position) + " where " +
                   std::to_string(expected) + " was expected: entries are missing or reordered");
    }
    ++expected;
    auto body = CanonicalBytes(line, obj, hash);
    if (!body) return where(body.error().message);
    if (ToHex(Sha256(*body)) != hash) {
      return where("entry " + std::to_string(position) +
                   " does not match its hash: it was changed after it was exported");
    }
    ++out.entries;
    if (!from_start) continue;
    tree.Append(*body);
    std::string_view kind, root, note;
    uint64_t size = 0;
    if (!obj["kind"].get_string().get(kind) && kind == "checkpoint" &&
        !obj["size"].get_uint64().get(size) && !obj["root"].get_string().get(root) &&
        !obj["note"].get_string().get(note)) {
      if (size > tree.size()) return where("a checkpoint of entries not yet exported");
      auto r = tree.Root(size);
      if (!r || ToHex(*r) != root) {
        return where("the checkpoint's root does not match the exported entries 1.." +
                     std::to_string(size) + ": the log was rewritten");
      }
      if (key) {
        auto cp = OpenCheckpoint(note, *key);
        if (!cp) return where("checkpoint: " + cp.error().message);
        if (cp->size != size || ToHex(cp->root) != root) {
          return where("the signed checkpoint does not match the entry that records it");
        }
      }
      ++out.checkpoints;
    }
  }
  return out;
}

}  // namespace assent::audit
