// Checking a ledger export before it is imported: an export is evidence, and a file in which a
// withdrawal was rewritten into a grant must not import cleanly (`assent ledger import`).
#ifndef ASSENT_AUDIT_EXPORT_CHECK_H_
#define ASSENT_AUDIT_EXPORT_CHECK_H_

#include <optional>
#include <string_view>

#include "assent/result.h"
#include "audit/checkpoint.h"

namespace assent::audit {

struct ExportCheck {
  uint64_t entries = 0;      // lines with a hash, checked
  uint64_t checkpoints = 0;  // checkpoint entries whose root matched the recomputed tree
  bool signatures_checked = false;
};

// Rebuilds each line's canonical entry bytes (the export writes the plain id in place of the
// pseudonym, and adds "hash" and "pseudonym" or "erased"), recomputes its SHA-256 and compares
// it with the line's "hash"; checks that positions are dense from the first line's; rebuilds
// the Merkle tree (when the export starts at position 1) and checks every checkpoint entry's
// root against it and, with `key`, its signature. kInvalidArgument "FILE:LINE: what" on the
// first problem (a line without a hash included: it cannot be checked), nothing else read.
Result<ExportCheck> CheckExport(std::string_view text, std::string_view file,
                                const std::optional<VerifierKey>& key);

}  // namespace assent::audit

#endif  // ASSENT_AUDIT_EXPORT_CHECK_H_
