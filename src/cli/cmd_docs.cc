// `assent completion bash` and `assent man`: shell completion and the manual page, generated
// from the same command table the parser uses, so neither drifts from the commands.
#include <iostream>
#include <string>

#include "cli/commands.h"

namespace assent::cli {
namespace {

std::string Path(const CLI::App* app) {
  std::string name;
  for (; app && app->get_parent(); app = app->get_parent()) {
    name = app->get_name() + (name.empty() ? "" : " " + name);
  }
  return name;
}

std::vector<const CLI::App*> Subcommands(const CLI::App* app) {
  return app->get_subcommands([](const CLI::App*) { return true; });
}

// Every command's words for completion: its subcommands and its long options.
void CompletionCases(const CLI::App* app, std::string* out) {
  std::string words;
  for (const CLI::App* sub : Subcommands(app)) words += sub->get_name() + " ";
  for (const CLI::Option* opt : app->get_options()) {
    for (const auto& l : opt->get_lnames()) words += "--" + l + " ";
  }
  *out += "    \"" + Path(app) + "\") words=\"" + words + "\" ;;\n";
  for (const CLI::App* sub : Subcommands(app)) CompletionCases(sub, out);
}

std::string Roff(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

void ManSection(const CLI::App* app, std::string* out) {
  if (app->get_parent()) {
    *out += ".SS " + Roff("assent " + Path(app)) + "\n" + Roff(app->get_description()) + "\n";
    for (const CLI::Option* opt : app->get_options()) {
      if (opt->get_lnames().empty() && opt->get_name(true).empty()) continue;
      const std::string name = opt->get_lnames().empty() ? opt->get_name(true)
                                                          : "--" + opt->get_lnames().front();
      if (name == "--help") continue;
      *out += ".TP\n.B " + Roff(name) + "\n" + Roff(opt->get_description()) + "\n";
    }
    if (!app->get_footer().empty()) {  // the example of --help, as a literal block
      std::string example = app->get_footer();
      while (!example.empty() && (example.front() == '\n')) example.erase(0, 1);
      *out += ".PP\n.nf\n" + Roff(example) + (example.ends_with('\n') ? "" : "\n") + ".fi\n";
    }
  }
  for (const CLI::App* sub : Subcommands(app)) ManSection(sub, out);
}

}  // namespace

void RegisterDocCommands(CLI::App& app, int* exit_code) {
  CLI::App* root = &app;
  auto* completion = app.add_subcommand("completion", "Print shell completion (bash)");
  auto shell = std::make_shared<std::string>();
  completion->add_option("SHELL", *shell, "bash")->required();
  completion->callback([root, shell, exit_code] {
    if (*shell != "bash") {
      *exit_code = Fail("only bash completion is generated, not '" + *shell + "'");
      return;
    }
    std::string cases;
    CompletionCases(root, &cases);
    std::cout << "# bash completion for assent (assent completion bash > "
                 "/etc/bash_completion.d/assent)\n"
                 "_assent() {\n  local cur path words i\n  cur=${COMP_WORDS[COMP_CWORD]}\n"
                 "  path=\"\"\n  for ((i = 1; i < COMP_CWORD; i++)); do\n"
                 "    case ${COMP_WORDS[i]} in -*) ;; *) path=\"${path:+$path }${COMP_WORDS[i]}\" ;; esac\n"
                 "  done\n  case \"$path\" in\n"
              << cases
              << "    *) words=\"\" ;;\n  esac\n"
                 "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
                 "  [[ ${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- \"$cur\"))\n}\n"
                 "complete -F _assent assent\n";
    *exit_code = 0;
  });
  auto* man = app.add_subcommand("man", "Print the manual page (roff): assent man > assent.1");
  man->callback([root, exit_code] {
    std::string sections;
    ManSection(root, &sections);
    std::cout << ".TH ASSENT 1\n.SH NAME\nassent \\- consent\\-gated data use: terms as code, a "
                 "consent ledger, decisions, a training\\-data gate and an audit log\n"
                 ".SH SYNOPSIS\n.B assent\n.I COMMAND\n[\\fIOPTIONS\\fR]\n.SH DESCRIPTION\n"
              << Roff(root->get_description())
              << "\n.SH COMMANDS\n" << sections
              << ".SH EXIT STATUS\n0 success (allow), 1 a finding (deny, a failed check), 2 an "
                 "error.\n.SH SEE ALSO\nREADME.md and docs/ in the source tree.\n";
    *exit_code = 0;
  });
}

}  // namespace assent::cli
