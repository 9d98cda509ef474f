// An example for every command's --help (and its section of the manual page): one table, so
// that a command without one is found by test/help_examples_test.sh, not by a user.
#include <string>
#include <utility>

#include "cli/commands.h"

namespace assent::cli {
namespace {

// Command path -> example lines (each a command line a user can paste, with a comment).
constexpr std::pair<const char*, const char*> kExamples[] = {
    {"terms", "assent terms lint examples/terms/*.yaml"},
    {"terms lint", "assent terms lint terms.yaml          # exit 1 naming each problem"},
    {"terms show", "assent terms show terms.yaml          # every category x purpose and its rule"},
    {"terms diff", "assent terms diff old.yaml new.yaml   # exit 1 when a use was loosened"},
    {"terms init", "assent terms init terms.yaml          # a commented file that lints clean"},
    {"terms test", "assent terms test --terms terms.yaml cases/   # like opa test, for your promises"},
    {"terms notice", "assent terms notice terms.yaml --rule meeting-quality-review | sha256sum   # = a receipt's notice\n"
                     "  assent terms notice --data ./assent-data --rule meeting-quality-review --locale de"},
    {"terms publish", "assent terms publish --data ./assent-data terms.yaml"},
    {"check",
     "assent check --category content.chat --purpose ai_training.first_party --subject u1\n"
     "  assent check --terms terms.yaml --events events.jsonl --category content.chat "
     "--purpose marketing --json"},
    {"consent", "assent consent grant --subject u1 --rule meeting-quality-review"},
    {"consent grant", "assent consent grant --subject u1 --rule meeting-quality-review > receipt.json"},
    {"consent withdraw",
     "assent consent withdraw --subject u1 --category service_generated --purpose ai_training"},
    {"consent history", "assent consent history --subject u1 --json"},
    {"consent receipt", "assent consent receipt --position 3 > receipt.json"},
    {"consent stale", "assent consent stale --rule meeting-quality-review --json   # whom to ask again"},
    {"keys", "assent keys create --role service --name billing"},
    {"keys create", "assent keys create --role service --name billing   # prints the key once"},
    {"keys list", "assent keys list"},
    {"keys revoke", "assent keys revoke billing"},
    {"subject", "assent subject erase u1 --yes"},
    {"subject erase", "assent subject erase u1 --yes        # crypto-shredding; entries stay verifiable"},
    {"account", "assent account erase acme --yes"},
    {"account erase", "assent account erase acme --yes"},
    {"ledger", "assent ledger export > export.jsonl"},
    {"ledger export", "assent ledger export > export.jsonl"},
    {"ledger import", "assent ledger import --data other-dir export.jsonl"},
    {"changes", "assent changes --after 0 --follow      # every entry, then each as it commits\n"
                "  ASSENT_KEY=... assent changes --server http://127.0.0.1:8080 --after 1200 --follow"},
    {"serve", "assent serve --data ./assent-data --listen 127.0.0.1:8080\n"
              "  assent serve --demo                   # example terms, demo people and keys"},
    {"filter",
     "assent filter --purpose ai_training.first_party --in manifest.jsonl --out kept.jsonl \\\n"
     "      --report report.json --dataset assistant-v3"},
    {"snapshot", "assent snapshot --out state.snap     # then: filter --snapshot state.snap"},
    {"datasets", "assent datasets list --json"},
    {"datasets list", "assent datasets list --json"},
    {"datasets show", "assent datasets show assistant-v3"},
    {"datasets verify", "assent datasets verify assistant-v3 --in manifest.jsonl"},
    {"models", "assent models register assistant-model-3 --dataset assistant-v3"},
    {"models register", "assent models register assistant-model-3 --dataset assistant-v3"},
    {"models list", "assent models list"},
    {"impact", "assent impact --subject u1             # datasets, shards and models holding u1"},
    {"audit", "assent audit verify"},
    {"audit key", "assent audit key                      # the verifier key to publish"},
    {"audit checkpoint", "assent audit checkpoint"},
    {"audit verify", "assent audit verify                   # exit 1 naming what was changed"},
    {"audit verify-receipt",
     "assent audit verify-receipt receipt.json --key \"$(assent audit key | head -1)\""},
    {"audit prove",
     "assent audit prove --receipt receipt.json --out-checkpoint later.txt "
     "--out-proof consistency.json"},
    {"completion", "assent completion bash > /etc/bash_completion.d/assent"},
    {"man", "assent man > assent.1 && man ./assent.1"},
};

std::string CommandPath(const CLI::App* app) {
  std::string name;
  for (; app && app->get_parent(); app = app->get_parent()) {
    name = app->get_name() + (name.empty() ? "" : " " + name);
  }
  return name;
}

void Walk(CLI::App* app) {
  const std::string path = CommandPath(app);
  for (const auto& [command, example] : kExamples) {
    if (path == command) app->footer(std::string("\nExample:\n  ") + example + "\n");
  }
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) Walk(sub);
}

}  // namespace

void AddHelpExamples(CLI::App& app) {
  app.footer("\nExample:\n  assent terms lint examples/terms/*.yaml\n"
             "  assent check --category content.chat --purpose ai_training.first_party --subject u1\n"
             "Every command's --help has its own.\n");
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) Walk(sub);
}

}  // namespace assent::cli
