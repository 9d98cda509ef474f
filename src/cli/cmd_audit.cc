// `assent audit key|checkpoint|verify`: the tamper-evident log.
#include <fmt/core.h>

#include <iostream>

#include "audit/audit.h"
#include "cli/commands.h"

namespace assent::cli {

void RegisterAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* audit = app.add_subcommand("audit", "Signed checkpoints and verification of the log");
  audit->require_subcommand(1);
  auto data = std::make_shared<std::string>("./assent-data");
  auto key_arg = std::make_shared<std::string>();

  auto* key = audit->add_subcommand("key", "Print the log's verifier key (creating the key)");
  key->add_option("--data", *data, "Data directory")->capture_default_str();
  key->callback([data, exit_code] {
    // Creates the key when missing — also for a --database ledger: run it once, then give
    // every node the file.
    const std::string path =
        Globals().audit_key.empty() ? *data + "/audit.key" : Globals().audit_key;
    auto k = audit::LoadSigningKeyFile(path, true);
    if (!k) {
      PrintError(k.error().message);
      *exit_code = 2;
      return;
    }
    std::cout << audit::VerifierKeyText(*k) << "\n";
    *exit_code = 0;
  });

  auto* cp = audit->add_subcommand("checkpoint", "Sign a checkpoint over every entry and record it");
  cp->add_option("--data", *data, "Data directory")->capture_default_str();
  cp->callback([data, exit_code] {
    *exit_code = 2;
    auto k = LoadAuditKey(*data, true);
    if (!k) {
      PrintError(k.error().message);
      return;
    }
    auto ledger = OpenLedger(*data, false);
    if (!ledger) {
      PrintError(ledger.error().message);
      return;
    }
    auto r = audit::MakeCheckpoint(**ledger, *k);
    if (!r) {
      PrintError(r.error().message);
      return;
    }
    std::cout << r->note;
    std::cerr << fmt::format("recorded at ledger position {} (covers entries 1-{})\n",
                             r->position, r->size);
    *exit_code = 0;
  });

  auto receipt_file = std::make_shared<std::string>();
  auto receipt_key = std::make_shared<std::string>();
  auto* vr = audit->add_subcommand(
      "verify-receipt", "Verify a receipt offline with the log's verifier key (exit 0, 1 or 2)");
  vr->add_option("RECEIPT", *receipt_file, "The receipt JSON as consent grant|withdraw printed it")
      ->required();
  vr->add_option("--key", *receipt_key, "The verifier key (as audit key prints it) or a file")
      ->required();
  auto later_file = std::make_shared<std::string>();
  auto consistency_file = std::make_shared<std::string>();
  auto* later_opt = vr->add_option(
      "--later-checkpoint", *later_file,
      "A later signed checkpoint (GET /v1/audit/checkpoint) to prove the event is still in");
  auto* consistency_opt = vr->add_option(
      "--consistency-proof", *consistency_file,
      "The consistency proof from the receipt's checkpoint to the later one "
      "(GET /v1/audit/proof/consistency?from=M&to=N)");
  later_opt->needs(consistency_opt);
  consistency_opt->needs(later_opt);
  vr->callback([receipt_file, receipt_key, later_file, consistency_file, exit_code] {
    *exit_code = 2;
    std::string text;
    if (!ReadFile(*receipt_file, &text)) {
      PrintError("cannot read receipt '" + *receipt_file + "'");
      return;
    }
    auto key = audit::ParseVerifierKey(*receipt_key);
    if (!key) {
      PrintError(key.error().message);
      return;
    }
    std::string later, consistency;
    if (!later_file->empty()) {
      if (!ReadFile(*later_file, &later)) {
        PrintError("cannot read checkpoint '" + *later_file + "'");
        return;
      }
      if (!ReadFile(*consistency_file, &consistency)) {
        PrintError("cannot read consistency proof '" + *consistency_file + "'");
        return;
      }
    }
    auto st = later_file->empty()
                  ? audit::VerifyReceipt(text, *key)
                  : audit::VerifyReceiptInLaterCheckpoint(text, later, consistency, *key);
    if (!st) {
      if (st.error().code == ErrorCode::kPermissionDenied) {
        std::cout << "FAIL " << st.error().message << "\n";
        *exit_code = 1;
      } else {
        PrintError(st.error().message);
      }
      return;
    }
    std::cout << "ok: the receipt's event is in the log, under a checkpoint signed by "
              << key->name << (later_file->empty() ? "" : ", and still in the later checkpoint")
              << "\n";
    *exit_code = 0;
  });

  auto* verify = audit->add_subcommand(
      "verify", "Recompute every hash and the tree; check every checkpoint (exit 1 on damage)");
  verify->add_option("--data", *data, "Data directory")->capture_default_str();
  verify->add_option("--key", *key_arg,
                     "Verifier key (or a file holding it); default the data directory's own");
  verify->callback([data, key_arg, exit_code] {
    *exit_code = 2;
    Result<audit::VerifierKey> vk = key_arg->empty()
        ? [&]() -> Result<audit::VerifierKey> {
            ASSENT_ASSIGN_OR_RETURN(auto k, LoadAuditKey(*data, false));
            return audit::ParseVerifierKey(audit::VerifierKeyText(k));
          }()
        : audit::ParseVerifierKey(*key_arg);
    if (!vk) {
      PrintError(vk.error().message);
      return;
    }
    auto r = audit::VerifyLedger(*data, *vk, Globals().database);
    if (!r) {
      PrintError(r.error().message);
      return;
    }
    for (const auto& p : r->problems) std::cout << "FAIL " << p << "\n";
    std::cout << fmt::format("{} entries, {} checkpoints, {} parties, root {}{}\n", r->entries,
                             r->checkpoints, r->parties, r->root_hex,
                             r->uncovered == 1
                                 ? "; 1 entry after the last valid checkpoint (its own entry, "
                                   "signed by the next) is not yet signed"
                             : r->uncovered ? fmt::format("; {} entries after the last valid "
                                                          "checkpoint are not yet signed",
                                                          r->uncovered)
                                            : "");
    std::cout << (r->ok() ? "ok: the log verifies\n" : "the log does NOT verify\n");
    *exit_code = r->ok() ? 0 : 1;
  });
}

}  // namespace assent::cli
