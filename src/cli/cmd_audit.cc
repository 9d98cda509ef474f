// `assent audit key|checkpoint|verify|verify-receipt`: the tamper-evident log.
#include <fmt/core.h>

#include <iostream>

#include <simdjson.h>

#include <fstream>

#include "audit/audit.h"
#include "cli/commands.h"
#include "common/json_writer.h"
#include "common/strings.h"

namespace assent::cli {
namespace {

struct AuditCommand {
  std::string data = "./assent-data", key;
  std::string receipt, later, consistency;  // verify-receipt, prove
};

// Creates the key when missing — also for a --database ledger: run it once, then give every
// node the file.
int Key(const AuditCommand& o) {
  const std::string path = Globals().audit_key.empty() ? o.data + "/audit.key" : Globals().audit_key;
  auto k = audit::LoadSigningKeyFile(path, true);
  if (!k) return Fail(k.error());
  std::cout << audit::VerifierKeyText(*k) << "\n";
  return 0;
}

int Checkpoint(const AuditCommand& o) {
  auto k = LoadAuditKey(o.data, true);
  if (!k) return Fail(k.error());
  auto ledger = OpenLedger(o.data, false);
  if (!ledger) return Fail(ledger.error());
  auto r = audit::MakeCheckpoint(**ledger, *k);
  if (!r) return Fail(r.error());
  std::cout << r->note;
  std::cerr << fmt::format("recorded at ledger position {} (covers entries 1-{})\n", r->position,
                           r->size);
  return 0;
}

int VerifyReceipt(const AuditCommand& o) {
  std::string text, later, consistency;
  if (!ReadFile(o.receipt, &text)) return Fail("cannot read receipt '" + o.receipt + "'");
  auto key = audit::ParseVerifierKey(o.key);
  if (!key) return Fail(key.error());
  if (!o.later.empty()) {
    if (!ReadFile(o.later, &later)) return Fail("cannot read checkpoint '" + o.later + "'");
    if (!ReadFile(o.consistency, &consistency)) {
      return Fail("cannot read consistency proof '" + o.consistency + "'");
    }
  }
  auto st = o.later.empty() ? audit::VerifyReceipt(text, *key)
                            : audit::VerifyReceiptInLaterCheckpoint(text, later, consistency, *key);
  if (!st && st.error().code == ErrorCode::kPermissionDenied) {
    std::cout << "FAIL " << st.error().message << "\n";
    return 1;
  }
  if (!st) return Fail(st.error());
  std::cout << "ok: the receipt's event is in the log, under a checkpoint signed by " << key->name
            << (o.later.empty() ? "" : ", and still in the later checkpoint") << "\n";
  return 0;
}

// For an old receipt: a checkpoint of the log as it is now, signed, and the consistency proof
// from the receipt's checkpoint to it — what `verify-receipt --later-checkpoint` checks.
int Prove(const AuditCommand& o) {
  std::string text;
  if (!ReadFile(o.receipt, &text)) return Fail("cannot read receipt '" + o.receipt + "'");
  simdjson::dom::parser parser;
  uint64_t from = 0;
  if (parser.parse(text).get_object()["tree_size"].get_uint64().get(from)) {
    return Fail("'" + o.receipt + "' is not a provable receipt (no tree_size): print one with "
                "`assent consent receipt --position N`");
  }
  auto key = LoadAuditKey(o.data, false);
  if (!key) return Fail(key.error());
  auto ledger = OpenLedger(o.data, true);
  if (!ledger) return Fail(ledger.error());
  auto auditor = audit::Auditor::Attach(**ledger, *key);
  if (!auditor) return Fail(auditor.error());
  const std::string checkpoint = (*auditor)->Checkpoint();
  const uint64_t to = (*auditor)->size();
  auto proof = (*auditor)->ConsistencyProof(from, to);
  if (!proof) return Fail(proof.error());
  JsonWriter w;
  w.BeginObject().Key("from").UInt(from).Key("to").UInt(to).Key("proof").BeginArray();
  for (const auto& h : *proof) {
    w.String(Base64Encode(std::string_view(reinterpret_cast<const char*>(h.data()), h.size())));
  }
  w.EndArray().EndObject();
  std::ofstream(o.later, std::ios::binary) << checkpoint;
  std::ofstream(o.consistency, std::ios::binary) << w.Take() << "\n";
  std::cout << fmt::format("wrote {} (a checkpoint of {} entries, signed now) and {} (the proof "
                           "from {} to {})\n", o.later, to, o.consistency, from, to);
  return 0;
}

Result<audit::VerifierKey> VerifierKeyFor(const AuditCommand& o) {
  if (!o.key.empty()) return audit::ParseVerifierKey(o.key);
  ASSENT_ASSIGN_OR_RETURN(auto k, LoadAuditKey(o.data, false));
  return audit::ParseVerifierKey(audit::VerifierKeyText(k));
}

int Verify(const AuditCommand& o) {
  auto vk = VerifierKeyFor(o);
  if (!vk) return Fail(vk.error());
  auto r = audit::VerifyLedger(o.data, *vk, Globals().database);
  if (!r) return Fail(r.error());
  for (const auto& p : r->problems) std::cout << "FAIL " << p << "\n";
  std::string uncovered;
  if (r->uncovered == 1) {
    uncovered = "; 1 entry after the last valid checkpoint (its own entry, signed by the next) "
                "is not yet signed";
  } else if (r->uncovered) {
    uncovered = fmt::format("; {} entries after the last valid checkpoint are not yet signed",
                            r->uncovered);
  }
  std::cout << fmt::format("{} entries, {} checkpoints, {} parties, root {}{}\n", r->entries,
                           r->checkpoints, r->parties, r->root_hex, uncovered);
  std::cout << (r->ok() ? "ok: the log verifies\n" : "the log does NOT verify\n");
  return r->ok() ? 0 : 1;
}

void RegisterVerifyReceipt(CLI::App* audit, int* exit_code) {
  auto o = std::make_shared<AuditCommand>();
  auto* vr = audit->add_subcommand(
      "verify-receipt", "Verify a receipt offline with the log's verifier key (exit 0, 1 or 2)");
  vr->add_option("RECEIPT", o->receipt, "The receipt JSON as consent grant|withdraw printed it")
      ->required();
  vr->add_option("--key", o->key, "The verifier key (as audit key prints it) or a file")
      ->required();
  auto* later = vr->add_option(
      "--later-checkpoint", o->later,
      "A later signed checkpoint (GET /v1/audit/checkpoint) to prove the event is still in");
  auto* consistency = vr->add_option(
      "--consistency-proof", o->consistency,
      "The consistency proof from the receipt's checkpoint to the later one "
      "(GET /v1/audit/proof/consistency?from=M&to=N)");
  later->needs(consistency);
  consistency->needs(later);
  vr->callback([o, exit_code] { *exit_code = VerifyReceipt(*o); });
}

}  // namespace

void RegisterAuditCommands(CLI::App& app, int* exit_code) {
  CLI::App* audit = app.add_subcommand("audit", "Signed checkpoints and verification of the log");
  audit->require_subcommand(1);
  auto k = std::make_shared<AuditCommand>();
  auto* key = audit->add_subcommand("key", "Print the log's verifier key (creating the key)");
  AddDataOption(key, &k->data);
  key->callback([k, exit_code] { *exit_code = Key(*k); });
  auto c = std::make_shared<AuditCommand>();
  auto* cp = audit->add_subcommand("checkpoint", "Sign a checkpoint over every entry and record it");
  AddDataOption(cp, &c->data);
  cp->callback([c, exit_code] { *exit_code = Checkpoint(*c); });
  RegisterVerifyReceipt(audit, exit_code);
  auto p = std::make_shared<AuditCommand>();
  auto* prove = audit->add_subcommand(
      "prove", "For an old receipt: a checkpoint signed now and the consistency proof from the "
               "receipt's checkpoint to it (the inputs of verify-receipt --later-checkpoint)");
  AddDataOption(prove, &p->data);
  prove->add_option("--receipt", p->receipt, "The receipt JSON")->required();
  prove->add_option("--out-checkpoint", p->later, "Where to write the checkpoint")->required();
  prove->add_option("--out-proof", p->consistency, "Where to write the proof")->required();
  prove->callback([p, exit_code] { *exit_code = Prove(*p); });
  auto v = std::make_shared<AuditCommand>();
  auto* verify = audit->add_subcommand(
      "verify", "Recompute every hash and the tree; check every checkpoint (exit 1 on damage)");
  AddDataOption(verify, &v->data);
  verify->add_option("--key", v->key,
                     "Verifier key (or a file holding it); default the data directory's own");
  verify->callback([v, exit_code] { *exit_code = Verify(*v); });
}

}  // namespace assent::cli
