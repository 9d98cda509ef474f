// Audits of the ledger: signing checkpoints, and verifying the whole log from storage —
// every entry's hash, the tree, every stored checkpoint's signature and root, and the
// consistency between consecutive checkpoints.
#ifndef ASSENT_AUDIT_AUDIT_H_
#define ASSENT_AUDIT_AUDIT_H_

#include <string>
#include <memory>
#include <mutex>
#include <vector>

#include "assent/ledger.h"
#include "audit/checkpoint.h"

namespace assent::audit {

// Signs a checkpoint over every entry so far and records it in the ledger.
struct CheckpointResult {
  uint64_t size = 0;
  uint64_t position = 0;  // of the checkpoint entry
  std::string note;
};
Result<CheckpointResult> MakeCheckpoint(Ledger& ledger, const SigningKey& key);

struct AuditReport {
  uint64_t entries = 0, checkpoints = 0;
  uint64_t uncovered = 0;  // entries after the last checkpoint
  uint64_t parties = 0;    // rows of the parties table, each checked against its pseudonym
  std::string root_hex;
  std::vector<std::string> problems;  // each names a position
  bool ok() const { return problems.empty(); }
};

// Reads DATA_DIR's ledger file directly (never through replay, which would refuse a damaged
// ledger) and checks everything against `key`.
Result<AuditReport> VerifyLedger(const std::string& data_dir, const VerifierKey& key,
                                 const std::string& database = "");

}  // namespace assent::audit



namespace assent::audit {

// A receipt made provable: the entry's canonical bytes, its leaf hash, a signed checkpoint
// covering it and the inclusion proof against that checkpoint. Builds the tree from storage
// (O(entries)); the checkpoint is signed on demand (not recorded).
Result<std::string> ProvableReceiptJson(const Ledger& ledger, const SigningKey& key,
                                        const Receipt& receipt);

// Verifies a receipt as ProvableReceiptJson wrote it, with nothing but the receipt and the
// verifier key. kInvalidArgument for a malformed receipt; kPermissionDenied when it does not
// verify (bad signature, wrong proof, entry not matching the receipt).
Status VerifyReceipt(std::string_view receipt_json, const VerifierKey& key);

// An old receipt against a later checkpoint: the receipt verifies against its own checkpoint,
// the later checkpoint is signed by the key, and the consistency proof (as
// GET /v1/audit/proof/consistency answers it) shows the receipt's tree is a prefix of the
// later one — so the event is still in the log the later checkpoint commits to.
Status VerifyReceiptInLaterCheckpoint(std::string_view receipt_json,
                                      std::string_view later_checkpoint,
                                      std::string_view consistency_json, const VerifierKey& key);

}  // namespace assent::audit

namespace assent::audit {

// The live audit state of a serving ledger: the tree kept in step with every append (an
// append observer), the signing key, and proofs on demand. Thread-safe.
class Auditor {
 public:
  // Builds the tree from storage (O(entries)) and starts following appends.
  static Result<std::unique_ptr<Auditor>> Attach(Ledger& ledger, SigningKey key);

  std::string VerifierKey() const { return VerifierKeyText(key_); }
  uint64_t size() const;
  // A checkpoint of the current tree, signed now (not recorded).
  std::string Checkpoint() const;
  Result<std::vector<Hash>> InclusionProof(uint64_t position, uint64_t size) const;
  Result<std::vector<Hash>> ConsistencyProof(uint64_t from, uint64_t to) const;
  Result<Hash> Leaf(uint64_t position) const;
  // The receipt with its entry, leaf hash, a checkpoint and the inclusion proof.
  Result<std::string> ProvableReceipt(const Ledger& ledger, const Receipt& receipt) const;
  // Records a signed checkpoint in the ledger when entries were added since the last one.
  Result<uint64_t> RecordCheckpointIfGrown(Ledger& ledger);

  // The ledger's verifier key is fixed by its first checkpoint: with none yet, this node signs
  // one now (before it serves anything), so a node started later with another key finds it.
  // kFailedPrecondition naming both keys when the first checkpoint is not this node's key's:
  // such a node must neither sign nor write. Reads the ledger up to its first checkpoint.
  Status EnsureLedgerKey(Ledger& ledger);

 private:
  Auditor(SigningKey key) : key_(std::move(key)) {}
  Result<uint64_t> RecordCheckpoint(Ledger& ledger, bool only_if_grown);
  SigningKey key_;
  mutable std::mutex mu_;
  MerkleTree tree_;
  uint64_t last_checkpoint_size_ = 0;
};

}  // namespace assent::audit
#endif  // ASSENT_AUDIT_AUDIT_H_
