// Checkpoint signing and full-log verification.
#include "audit/audit.h"

#include <simdjson.h>

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

Result<AuditReport> VerifyLedger(const std::string& data_dir, const VerifierKey& key) {
  ASSENT_ASSIGN_OR_RETURN(auto store, internal::OpenSqliteStore(data_dir, true));
  AuditReport report;
  MerkleTree tree;
  struct Stored {
    uint64_t position;
    std::string note;
  };
  std::vector<Stored> checkpoints;
  simdjson::dom::parser parser;
  uint64_t expected = 1;
  ASSENT_RETURN_IF_ERROR(store->Scan(0, [&](const internal::EntryView& v) -> Status {
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
    if (v.hash.size() != 32 ||
        Sha256(v.body) != *reinterpret_cast<const Sha256Digest*>(v.hash.data())) {
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
    return OkStatus();
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
  return report;
}

}  // namespace assent::audit
