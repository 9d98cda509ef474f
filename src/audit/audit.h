// Audits of the ledger: signing checkpoints, and verifying the whole log from storage —
// every entry's hash, the tree, every stored checkpoint's signature and root, and the
// consistency between consecutive checkpoints.
#ifndef ASSENT_AUDIT_AUDIT_H_
#define ASSENT_AUDIT_AUDIT_H_

#include <string>
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
  std::string root_hex;
  std::vector<std::string> problems;  // each names a position
  bool ok() const { return problems.empty(); }
};

// Reads DATA_DIR's ledger file directly (never through replay, which would refuse a damaged
// ledger) and checks everything against `key`.
Result<AuditReport> VerifyLedger(const std::string& data_dir, const VerifierKey& key);

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

}  // namespace assent::audit
#endif  // ASSENT_AUDIT_AUDIT_H_
