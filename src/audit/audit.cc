// Checkpoint signing and full-log verification.
#include "audit/audit.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "common/json_keys.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "ledger/parties.h"
#include "ledger/store.h"

namespace assent::audit {

Result<CheckpointResult> MakeCheckpoint(Ledger& ledger, const SigningKey& key) {
  MerkleTree tree;
  ASSENT_RETURN_IF_ERROR(ledger.ScanEntries(
      0, [&](uint64_t, std::string_view, std::string_view body, std::string_view) -> Status {
        tree.Append(body);
        return OkStatus();
      }));
  if (tree.size() != ledger.position()) {
    return FailedPreconditionError("the ledger moved on while it was read; retry");
  }
  ASSENT_ASSIGN_OR_RETURN(Hash root, tree.Root(tree.size()));
  CheckpointResult r;
  r.size = tree.size();
  r.note = SignCheckpoint(key, r.size, root);
  ASSENT_ASSIGN_OR_RETURN(r.position, ledger.AppendCheckpoint(r.size, ToHex(root), r.note));
  return r;
}

Result<AuditReport> VerifyLedger(const std::string& data_dir, const VerifierKey& key,
                                 const std::string& database) {
  ASSENT_ASSIGN_OR_RETURN(auto store, internal::OpenStore(data_dir, database, true));
  AuditReport report;
  MerkleTree tree;
  struct Stored {
    uint64_t position;
    std::string note;
  };
  std::vector<Stored> checkpoints;
  simdjson::dom::parser parser;
  uint64_t expected = 1;
  ASSENT_RETURN_IF_ERROR(store->Scan(0, [&](const internal::EntryView& v)
                                                -> Result<internal::ScanControl> {
    if (v.position != expected) {
      report.problems.push_back("entries " + std::to_string(expected) + " to " +
                                std::to_string(v.position - 1) + " are missing");
      while (expected < v.position) {  // keep the tree's indexes aligned with positions
        tree.AppendLeafHash(Hash{});
        ++expected;
      }
    }
    ++expected;
    ++report.entries;
    if (!internal::HashMatches(v)) {
      report.problems.push_back("entry at position " + std::to_string(v.position) +
                                " does not match its stored hash: it was changed");
    }
    simdjson::dom::element doc;
    uint64_t inner = 0;
    if (parser.parse(v.body.data(), v.body.size()).get(doc) ||
        doc["position"].get_uint64().get(inner) || inner != v.position) {
      report.problems.push_back("entry at position " + std::to_string(v.position) +
                                " says it belongs at another position: entries were moved");
    } else if (v.kind == internal::EntryKind::kCheckpoint) {
      std::string_view note;
      if (doc["note"].get_string().get(note)) {
        report.problems.push_back("checkpoint at position " + std::to_string(v.position) +
                                  " has no note");
      } else {
        checkpoints.push_back({v.position, std::string(note)});
      }
    }
    tree.Append(v.body);
    return internal::ScanControl::kContinue;
  }));
  report.checkpoints = checkpoints.size();
  report.root_hex = ToHex(*tree.Root(tree.size()));
  uint64_t last_good_size = 0;
  Hash last_good_root{};
  for (const auto& c : checkpoints) {
    const std::string where = "checkpoint at position " + std::to_string(c.position);
    auto cp = OpenCheckpoint(c.note, key);
    if (!cp) {
      report.problems.push_back(where + ": " + cp.error().message);
      continue;
    }
    if (cp->size > tree.size()) {
      report.problems.push_back(where + " covers " + std::to_string(cp->size) +
                                " entries but the ledger holds " + std::to_string(tree.size()));
      continue;
    }
    Hash root = *tree.Root(cp->size);
    if (root != cp->root) {
      report.problems.push_back(
          where + " signed a different tree of " + std::to_string(cp->size) +
          " entries: an entry between positions " + std::to_string(last_good_size + 1) + " and " +
          std::to_string(cp->size) + " was changed, removed, reordered or inserted");
      continue;
    }
    if (last_good_size) {
      auto proof = tree.ConsistencyProof(last_good_size, cp->size);
      if (!proof || !VerifyConsistency(last_good_size, cp->size, *proof, last_good_root, root)) {
        report.problems.push_back(where + " is not consistent with the checkpoint before it");
      }
    }
    last_good_size = cp->size;
    last_good_root = root;
  }
  report.uncovered = tree.size() - last_good_size;
  // The parties table (outside the tree): every pseudonym must be its secret's HMAC of the id,
  // or the entries it names would be linked to the wrong person. Start-up trusts this check.
  uint64_t bad_parties = 0;
  std::string first_bad;
  ASSENT_RETURN_IF_ERROR(store->ScanParties([&](const internal::PartyRow& row) -> Status {
    ++report.parties;
    if (internal::MakePseudonym(row.secret, row.kind, row.id) != row.pseudonym) {
      if (bad_parties++ == 0) first_bad = std::string(PartyKindName(row.kind)) + " " + row.pseudonym;
    }
    return OkStatus();
  }));
  if (bad_parties) {
    report.problems.push_back(std::to_string(bad_parties) + " row(s) of the parties table do not "
                              "match their pseudonym (first: " + first_bad + "): a secret or id "
                              "was changed, which would link entries to the wrong person");
  }
  return report;
}

}  // namespace assent::audit

#include "common/json_writer.h"
#include "common/strings.h"

namespace assent::audit {

Result<std::string> ProvableReceiptJson(const Ledger& ledger, const SigningKey& key,
                                        const Receipt& receipt) {
  MerkleTree tree;
  std::string entry;
  ASSENT_RETURN_IF_ERROR(ledger.ScanEntries(
      0, [&](uint64_t position, std::string_view, std::string_view body, std::string_view) {
        if (position == receipt.position) entry = std::string(body);
        tree.Append(body);
        return OkStatus();
      }));
  if (entry.empty()) return NotFoundError("no entry at position " + std::to_string(receipt.position));
  const uint64_t size = tree.size();
  ASSENT_ASSIGN_OR_RETURN(Hash root, tree.Root(size));
  ASSENT_ASSIGN_OR_RETURN(auto proof, tree.InclusionProof(receipt.position - 1, size));
  std::string json = receipt.ToJson();
  json.pop_back();  // extend the receipt object
  JsonWriter w;
  w.BeginObject();
  w.Key("entry").String(entry);
  w.Key("leaf_hash").String(ToHex(LeafHash(entry)));
  w.Key("tree_size").UInt(size);
  w.Key("checkpoint").String(SignCheckpoint(key, size, root));
  w.Key("inclusion_proof").BeginArray();
  for (const auto& h : proof) {
    w.String(Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32)));
  }
  w.EndArray().EndObject();
  return json + "," + w.str().substr(1);
}

namespace {
// A JSON array of base64 hashes, as the receipts and the proof routes write them.
Result<std::vector<Hash>> ParseHashes(simdjson::dom::array items, std::string_view what) {
  std::vector<Hash> out;
  for (auto p : items) {
    std::string_view b64;
    std::string raw;
    if (p.get_string().get(b64) || !Base64Decode(b64, &raw) || raw.size() != 32) {
      return InvalidArgumentError("the " + std::string(what) +
                                  " holds something that is not a base64 SHA-256 hash");
    }
    Hash h;
    std::memcpy(h.data(), raw.data(), 32);
    out.push_back(h);
  }
  return out;
}
}  // namespace

namespace {

// Every field a provable receipt may carry. Anything else is refused: a receipt states nothing
// that is not checked.
constexpr std::string_view kReceiptFields[] = {
    "position", "subject",  "account", "pseudonym", "pseudonym_key", "action",
    "categories", "purposes", "terms",  "at",        "method",        "rule",
    "actor",    "hash",     "replayed", "entry",     "leaf_hash",     "tree_size",
    "checkpoint", "inclusion_proof", "notice"};

Status Forged(std::string_view field, std::string_view why = "") {
  return MakeError(ErrorCode::kPermissionDenied,
                   "the receipt's \"" + std::string(field) + "\" does not match the signed entry" +
                       (why.empty() ? std::string() : ": " + std::string(why)));
}

// The receipt's string field equals the entry's (both absent counts as equal).
Status SameString(simdjson::dom::element receipt, simdjson::dom::element entry, const char* key) {
  std::string_view a, b;
  const bool in_receipt = !receipt[key].get_string().get(a);
  const bool in_entry = !entry[key].get_string().get(b);
  if (in_receipt != in_entry || a != b) return Forged(key);
  return OkStatus();
}

Status SameList(simdjson::dom::element receipt, simdjson::dom::element entry, const char* key) {
  simdjson::dom::array a, b;
  if (receipt[key].get_array().get(a) || entry[key].get_array().get(b)) return Forged(key);
  if (a.size() != b.size()) return Forged(key);
  auto ia = a.begin();
  for (auto eb : b) {
    std::string_view x, y;
    if ((*ia).get_string().get(x) || eb.get_string().get(y) || x != y) return Forged(key);
    ++ia;
  }
  return OkStatus();
}

// Every field the receipt states about the event, against the entry's canonical bytes.
Status CheckStatedFields(simdjson::dom::element doc, simdjson::dom::element e,
                         std::string_view entry) {
  std::string_view kind;
  if (e["kind"].get_string().get(kind) || kind != "consent") {
    return Forged("entry", "it is not a consent event");
  }
  uint64_t position = 0, entry_position = 0;
  if (doc["position"].get_uint64().get(position) || e["position"].get_uint64().get(entry_position) ||
      position != entry_position) {
    return Forged("position");
  }
  for (const char* key : {"action", "at", "method", "rule", "actor"}) {
    ASSENT_RETURN_IF_ERROR(SameString(doc, e, key));
  }
  ASSENT_RETURN_IF_ERROR(SameList(doc, e, "categories"));
  ASSENT_RETURN_IF_ERROR(SameList(doc, e, "purposes"));
  // The notice shown ("none", or its locale and hash): as the entry states it, or absent from
  // both (entries before ledger schema 3).
  {
    simdjson::dom::element a, b;
    const bool in_receipt = doc["notice"].get(a) == simdjson::SUCCESS;
    const bool in_entry = e["notice"].get(b) == simdjson::SUCCESS;
    if (in_receipt != in_entry ||
        (in_receipt && simdjson::minify(a) != simdjson::minify(b))) {
      return Forged("notice");
    }
  }
  // "terms" is "ID@VERSION": the version must be the entry's terms_version and the id its
  // "terms" (an entry written before the id was recorded cannot vouch for one: refused).
  std::string_view terms, version, terms_id;
  if (doc["terms"].get_string().get(terms) || e["terms_version"].get_string().get(version)) {
    return Forged("terms");
  }
  const size_t at = terms.rfind('@');
  if (at == std::string_view::npos || terms.substr(at + 1) != version) return Forged("terms");
  if (e["terms"].get_string().get(terms_id) || terms.substr(0, at) != terms_id) {
    return Forged("terms", "the entry does not name this terms document");
  }
  std::string_view hash, leaf;
  if (doc["hash"].get_string().get(hash) || hash != ToHex(Sha256(entry))) return Forged("hash");
  if (doc["leaf_hash"].get_string().get(leaf) || leaf != ToHex(LeafHash(entry))) {
    return Forged("leaf_hash");
  }
  return OkStatus();
}

}  // namespace

Status VerifyReceipt(std::string_view receipt_json, const VerifierKey& key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object fields;
  if (parser.parse(receipt_json.data(), receipt_json.size()).get(doc) ||
      doc.get_object().get(fields)) {
    return InvalidArgumentError("the receipt is not a JSON object");
  }
  if (auto dup = DuplicateKey(fields)) {
    return InvalidArgumentError("the receipt states \"" + std::string(*dup) + "\" twice");
  }
  for (auto f : fields) {
    if (std::find(std::begin(kReceiptFields), std::end(kReceiptFields), f.key) ==
        std::end(kReceiptFields)) {
      return InvalidArgumentError("the receipt has a field no receipt has: \"" +
                                  std::string(f.key) + "\"");
    }
  }
  std::string_view entry, note;
  uint64_t position = 0, size = 0;
  simdjson::dom::array proof_items;
  if (doc["entry"].get_string().get(entry) || doc["checkpoint"].get_string().get(note) ||
      doc["position"].get_uint64().get(position) || doc["tree_size"].get_uint64().get(size) ||
      doc["inclusion_proof"].get_array().get(proof_items)) {
    return InvalidArgumentError(
        "not a provable receipt: it needs entry, checkpoint, position, tree_size and "
        "inclusion_proof (from consent grant|withdraw with an audit key)");
  }
  ASSENT_ASSIGN_OR_RETURN(std::vector<Hash> proof, ParseHashes(proof_items, "inclusion proof"));
  // The entry must be the event the receipt describes, field by field.
  simdjson::dom::parser entry_parser;
  simdjson::dom::element e;
  simdjson::dom::object entry_fields;
  if (entry_parser.parse(entry.data(), entry.size()).get(e) || e.get_object().get(entry_fields) ||
      DuplicateKey(entry_fields)) {
    return InvalidArgumentError("the receipt's entry is not a ledger entry");
  }
  ASSENT_RETURN_IF_ERROR(CheckStatedFields(doc, e, entry));
  // The entry names the party by its pseudonym (never the plain id); the receipt gives both.
  // The key proves the pseudonym is the party's: pseudonym = HMAC-SHA-256(key, kind ":" id).
  std::string_view pseudonym, key_b64;
  std::string secret;
  if (doc["pseudonym"].get_string().get(pseudonym) ||
      doc["pseudonym_key"].get_string().get(key_b64) || !Base64Decode(key_b64, &secret) ||
      secret.size() != 32) {
    return InvalidArgumentError(
        "not a provable receipt: it needs pseudonym and pseudonym_key (a base64 32-byte key)");
  }
  internal::PartySecret party_key;
  std::memcpy(party_key.data(), secret.data(), 32);
  int named = 0;
  for (PartyKind kind : {PartyKind::kSubject, PartyKind::kAccount}) {
    const std::string name(PartyKindName(kind));
    std::string_view a, b;
    bool in_receipt = !doc[name].get_string().get(a);
    bool in_entry = !e[name].get_string().get(b);
    named += in_entry;
    if (in_receipt != in_entry ||
        (in_entry && (b != pseudonym || internal::MakePseudonym(party_key, kind, a) != b))) {
      return MakeError(ErrorCode::kPermissionDenied, "the receipt's entry names another party");
    }
  }
  if (named != 1) return Forged("entry", "it must name exactly one party");
  ASSENT_ASSIGN_OR_RETURN(Checkpoint cp, OpenCheckpoint(note, key));
  if (cp.size != size || position == 0 || position > size) {
    return MakeError(ErrorCode::kPermissionDenied, "the checkpoint does not cover the entry");
  }
  if (!VerifyInclusion(position - 1, size, LeafHash(entry), proof, cp.root)) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "the inclusion proof does not lead to the signed root");
  }
  return OkStatus();
}

Status VerifyReceiptInLaterCheckpoint(std::string_view receipt_json,
                                      std::string_view later_checkpoint,
                                      std::string_view consistency_json, const VerifierKey& key) {
  ASSENT_RETURN_IF_ERROR(VerifyReceipt(receipt_json, key));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view note;
  if (parser.parse(receipt_json.data(), receipt_json.size()).get(doc) ||
      doc["checkpoint"].get_string().get(note)) {
    return InvalidArgumentError("the receipt has no checkpoint");
  }
  ASSENT_ASSIGN_OR_RETURN(Checkpoint earlier, OpenCheckpoint(note, key));
  ASSENT_ASSIGN_OR_RETURN(Checkpoint later, OpenCheckpoint(later_checkpoint, key));
  simdjson::dom::parser proof_parser;
  simdjson::dom::element proof_doc;
  uint64_t from = 0, to = 0;
  simdjson::dom::array items;
  simdjson::dom::object proof_fields;
  if (proof_parser.parse(consistency_json.data(), consistency_json.size()).get(proof_doc) ||
      proof_doc.get_object().get(proof_fields) || DuplicateKey(proof_fields) ||
      proof_doc["from"].get_uint64().get(from) || proof_doc["to"].get_uint64().get(to) ||
      proof_doc["proof"].get_array().get(items)) {
    return InvalidArgumentError(
        "not a consistency proof: it needs from, to and proof (as GET "
        "/v1/audit/proof/consistency?from=M&to=N answers)");
  }
  ASSENT_ASSIGN_OR_RETURN(std::vector<Hash> proof, ParseHashes(items, "consistency proof"));
  if (from != earlier.size || to != later.size) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "the consistency proof is from " + std::to_string(from) + " to " +
                         std::to_string(to) + ", but the receipt's checkpoint has " +
                         std::to_string(earlier.size) + " entries and the later one " +
                         std::to_string(later.size));
  }
  if (!VerifyConsistency(earlier.size, later.size, proof, earlier.root, later.root)) {
    return MakeError(ErrorCode::kPermissionDenied,
                     "the later checkpoint does not extend the receipt's: the log was rewritten");
  }
  return OkStatus();
}

}  // namespace assent::audit

namespace assent::audit {

Result<std::unique_ptr<Auditor>> Auditor::Attach(Ledger& ledger, SigningKey key) {
  std::unique_ptr<Auditor> a(new Auditor(std::move(key)));
  // Up to the position the ledger has applied, not the store's head: on a shared database
  // other nodes keep appending, and what this node has not applied yet reaches the tree
  // through the append observer below (in order, once applied), never twice.
  const uint64_t applied = ledger.position();
  const Status past = MakeError(ErrorCode::kAlreadyExists, "past the applied position");
  Status st = ledger.ScanEntries(
      0, [&](uint64_t position, std::string_view, std::string_view body, std::string_view) {
        if (position > applied) return past;
        a->tree_.Append(body);
        return OkStatus();
      });
  if (!st && st.error().code != ErrorCode::kAlreadyExists) return std::unexpected(st.error());
  Auditor* raw = a.get();
  // Entries other nodes appended while the tree was built are fed in under the write lock.
  ASSENT_RETURN_IF_ERROR(ledger.SetAppendObserver(
      [raw](uint64_t, std::string_view body) {
        std::lock_guard lock(raw->mu_);
        raw->tree_.Append(body);
      },
      a->tree_.size()));
  return a;
}

uint64_t Auditor::size() const {
  std::lock_guard lock(mu_);
  return tree_.size();
}

std::string Auditor::Checkpoint() const {
  std::lock_guard lock(mu_);
  return SignCheckpoint(key_, tree_.size(), *tree_.Root(tree_.size()));
}

Result<std::vector<Hash>> Auditor::InclusionProof(uint64_t position, uint64_t size) const {
  if (position == 0) return InvalidArgumentError("positions start at 1");
  std::lock_guard lock(mu_);
  return tree_.InclusionProof(position - 1, size);
}

Result<std::vector<Hash>> Auditor::ConsistencyProof(uint64_t from, uint64_t to) const {
  std::lock_guard lock(mu_);
  return tree_.ConsistencyProof(from, to);
}

Result<Hash> Auditor::Leaf(uint64_t position) const {
  std::lock_guard lock(mu_);
  if (position == 0 || position > tree_.size()) {
    return InvalidArgumentError("no entry at position " + std::to_string(position));
  }
  return tree_.leaf(position - 1);
}

Result<std::string> Auditor::ProvableReceipt(const Ledger& ledger, const Receipt& receipt) const {
  std::string entry;
  auto st = ledger.ScanEntries(receipt.position - 1,
                               [&](uint64_t pos, std::string_view, std::string_view body,
                                   std::string_view) -> Status {
                                 if (pos == receipt.position) entry = std::string(body);
                                 return MakeError(ErrorCode::kAlreadyExists, "stop");
                               });
  if (entry.empty()) return NotFoundError("no entry at position " + std::to_string(receipt.position));
  std::string note;
  std::vector<Hash> proof;
  uint64_t size;
  {
    std::lock_guard lock(mu_);
    size = tree_.size();
    note = SignCheckpoint(key_, size, *tree_.Root(size));
    ASSENT_ASSIGN_OR_RETURN(proof, tree_.InclusionProof(receipt.position - 1, size));
  }
  std::string json = receipt.ToJson();
  json.pop_back();
  JsonWriter w;
  w.BeginObject();
  w.Key("entry").String(entry);
  w.Key("leaf_hash").String(ToHex(LeafHash(entry)));
  w.Key("tree_size").UInt(size);
  w.Key("checkpoint").String(note);
  w.Key("inclusion_proof").BeginArray();
  for (const auto& h : proof) {
    w.String(Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), 32)));
  }
  w.EndArray().EndObject();
  return json + "," + w.str().substr(1);
}

Result<uint64_t> Auditor::RecordCheckpointIfGrown(Ledger& ledger) {
  return RecordCheckpoint(ledger, true);
}

namespace {
// The signer named in a C2SP note's first signature line ("— NAME BASE64"), for messages.
std::string NoteSigner(std::string_view note) {
  const size_t at = note.find("\n\xe2\x80\x94 ");
  if (at == std::string_view::npos) return "(unsigned)";
  std::string_view line = note.substr(at + 5);
  line = line.substr(0, line.find('\n'));
  const size_t space = line.find(' ');
  std::string name(line.substr(0, space));
  if (space != std::string_view::npos) name += " (signature " + std::string(line.substr(space + 1, 8)) + "…)";
  return name;
}
}  // namespace

Status Auditor::EnsureLedgerKey(Ledger& ledger) {
  auto first_checkpoint = [&]() -> Result<std::pair<uint64_t, std::string>> {
    std::pair<uint64_t, std::string> found{0, ""};
    const Status stop = MakeError(ErrorCode::kAlreadyExists, "found");
    Status st = ledger.ScanEntries(
        0, [&](uint64_t position, std::string_view kind, std::string_view body,
               std::string_view) -> Status {
          if (kind != "checkpoint") return OkStatus();
          simdjson::dom::parser parser;
          std::string_view note;
          if (parser.parse(body.data(), body.size())["note"].get_string().get(note)) {
            return DataLossError("the checkpoint at position " + std::to_string(position) +
                                 " has no note");
          }
          found = {position, std::string(note)};
          return stop;
        });
    if (!st && st.error().code != ErrorCode::kAlreadyExists) return std::unexpected(st.error());
    return found;
  };
  ASSENT_ASSIGN_OR_RETURN(auto first, first_checkpoint());
  if (first.first == 0) {
    ASSENT_RETURN_IF_ERROR(RecordCheckpoint(ledger, false));
    ASSENT_ASSIGN_OR_RETURN(first, first_checkpoint());  // another node may have been first
  }
  auto ours = ParseVerifierKey(VerifierKeyText(key_));
  if (!ours) return std::unexpected(ours.error());
  if (first.first != 0 && !OpenCheckpoint(first.second, *ours)) {
    return FailedPreconditionError(
        "this ledger's key is fixed by its first checkpoint (position " +
        std::to_string(first.first) + "), signed by " + NoteSigner(first.second) +
        ", but this node's key is " + VerifierKeyText(key_) +
        ": it neither signs nor writes. Start it with the ledger's key (--audit-key FILE, the "
        "same file on every node)");
  }
  return OkStatus();
}

Result<uint64_t> Auditor::RecordCheckpoint(Ledger& ledger, bool only_if_grown) {
  {
    std::lock_guard lock(mu_);
    const uint64_t size = tree_.size();
    if (only_if_grown && (size == last_checkpoint_size_ || size == 0)) return 0;
  }
  // Signed inside the ledger's append lock, after it caught up with other nodes: the tree
  // (kept in step by the append observer) then holds exactly the entries before this one.
  uint64_t signed_size = 0;
  ASSENT_ASSIGN_OR_RETURN(
      uint64_t position,
      ledger.AppendCheckpoint([&](uint64_t size) -> Result<std::pair<std::string, std::string>> {
        std::lock_guard lock(mu_);
        if (tree_.size() != size) {
          return InternalError("the audit tree has " + std::to_string(tree_.size()) +
                               " entries but the ledger " + std::to_string(size));
        }
        ASSENT_ASSIGN_OR_RETURN(Hash root, tree_.Root(size));
        signed_size = size;
        return std::make_pair(ToHex(root), SignCheckpoint(key_, size, root));
      }));
  std::lock_guard lock(mu_);
  last_checkpoint_size_ = signed_size + 1;  // the checkpoint entry itself is covered by the next
  return position;
}

}  // namespace assent::audit
