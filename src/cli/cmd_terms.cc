// `assent terms lint|show|diff`: the terms author's tools.
#include <fmt/core.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "assent/terms.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "cli/case_runner.h"
#include "cli/commands.h"
#include "cli/terms_template.h"
#include "terms/diff.h"
#include "terms/show.h"

namespace assent::cli {

namespace {

// Lints `path` for commands that need its rules; prints problems to stderr. Returns the
// draft (null after printing why), so documents missing only descriptions still compare.
std::shared_ptr<const Terms> LoadForReading(const std::string& path, int* exit_code) {
  std::string text;
  if (!ReadFile(path, &text)) {
    PrintError("cannot read terms file '" + path + "'");
    *exit_code = 2;
    return nullptr;
  }
  LintResult r = LintTerms(text, path);
  if (!r.draft) {
    for (const auto& d : r.diagnostics) std::cerr << RenderDiagnostic(d, text, UseColor(2));
    PrintError("'" + path + "' does not compile; fix the errors above");
    *exit_code = 2;
    return nullptr;
  }
  if (r.has_errors()) {
    size_t n = 0;
    for (const auto& d : r.diagnostics) n += d.severity == Severity::kError;
    std::cerr << "assent: warning: '" << path << "' has " << n
              << " lint error(s) (undefined terms) and may not be published; read as written. "
              << "Run 'assent terms lint " << path << "' for details.\n";
  }
  return r.draft;
}
struct TermsCommand {
  std::vector<std::string> files;
  std::string file, old_file, new_file;
  std::string locale;  // show: the texts in this language too
  bool json = false;
};

// Every human-readable text of `t` in locale `l`, as a person reads it.
nlohmann::ordered_json Texts(const Terms& t, int32_t l) {
  nlohmann::ordered_json j;
  j["locale"] = t.locales()[l];
  for (size_t r = 0; r < t.rules().size(); ++r) {
    if (!t.rules()[r].summary.empty()) j["rules"][t.rules()[r].id] = t.RuleSummary(r, l);
  }
  for (size_t c = 0; c < t.categories().size(); ++c) {
    j["categories"][t.categories()[c].name] = t.CategoryDescription(c, l);
  }
  for (size_t p = 0; p < t.purposes().size(); ++p) {
    j["purposes"][t.purposes()[p].name] = t.PurposeDescription(p, l);
  }
  for (size_t c = 0; c < t.clauses().size(); ++c) {
    j["clauses"][t.clauses()[c].id] = {{"title", t.ClauseText(c, l).title},
                                       {"text", t.ClauseText(c, l).text}};
  }
  return j;
}

// Exit 0 without errors, 1 with any error, 2 when a file cannot be read.
int Lint(const TermsCommand& o) {
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  int code = 0;
  for (const auto& f : o.files) {
    std::string text;
    if (!ReadFile(f, &text)) {
      code = Fail("cannot read terms file '" + f + "'");
      continue;
    }
    LintResult r = LintTerms(text, f);
    size_t errors = 0, warnings = 0;
    for (const auto& d : r.diagnostics) {
      (d.severity == Severity::kError ? errors : warnings)++;
      if (o.json) {
        all.push_back({{"file", d.file},
                       {"line", d.line},
                       {"column", d.column},
                       {"severity", d.severity == Severity::kError ? "error" : "warning"},
                       {"message", d.message},
                       {"code", d.code}});
      } else {
        std::cout << RenderDiagnostic(d, text, UseColor(1));
      }
    }
    if (!o.json) {
      std::cout << fmt::format("{}: {} error(s), {} warning(s){}\n", f, errors, warnings,
                               r.terms ? " — " + r.terms->label() + " compiles" : "");
    }
    if (errors && code == 0) code = 1;
  }
  if (o.json) std::cout << all.dump(2) << "\n";
  return code;
}

int Show(const TermsCommand& o) {
  int exit_code = 0;
  auto t = LoadForReading(o.file, &exit_code);
  if (!t) return exit_code;
  int32_t l = -1;
  if (!o.locale.empty() && (l = t->FindLocale(o.locale)) < 0) {
    return Fail("'" + o.file + "' is not offered in '" + o.locale + "' (it is in: " +
                Join(t->locales(), ", ") + ")");
  }
  if (o.json) {
    auto j = MatrixJson(*t);
    j["locales"] = t->locales();
    if (l >= 0) j["texts"] = Texts(*t, l);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << RenderMatrixTable(*t);
  std::cout << "languages: " << Join(t->locales(), ", ") << "\n";
  if (l < 0) return 0;
  const auto j = Texts(*t, l);
  std::cout << "\nin " << o.locale << ":\n";
  if (j.contains("rules")) {
    for (const auto& [id, text] : j["rules"].items()) std::cout << "  rule " << id << ": " << text.get<std::string>() << "\n";
  }
  for (const auto& [name, text] : j["categories"].items()) std::cout << "  category " << name << ": " << text.get<std::string>() << "\n";
  for (const auto& [name, text] : j["purposes"].items()) std::cout << "  purpose " << name << ": " << text.get<std::string>() << "\n";
  for (const auto& [id, c] : j["clauses"].items()) {
    std::cout << "  clause " << id << " " << c["title"].get<std::string>() << ": " << c["text"].get<std::string>() << "\n";
  }
  return 0;
}

// Exit 0 when nothing loosened, 1 when something did.
int Diff(const TermsCommand& o) {
  int exit_code = 0;
  auto a = LoadForReading(o.old_file, &exit_code);
  if (!a) return exit_code;
  auto b = LoadForReading(o.new_file, &exit_code);
  if (!b) return exit_code;
  if (a->id() != b->id()) {
    return Fail("'" + o.old_file + "' is document '" + a->id() + "' but '" + o.new_file +
                "' is '" + b->id() + "': compare versions of one document");
  }
  TermsDiff d = DiffTerms(*a, *b);
  if (o.json) {
    std::cout << DiffJson(d).dump(2) << "\n";
  } else {
    std::cout << RenderDiff(d);
  }
  return d.loosened() ? 1 : 0;
}

// A commented starting terms file that lints clean; never over an existing file.
int Init(const std::string& file) {
  if (std::filesystem::exists(file)) return Fail("'" + file + "' exists: choose a new file name");
  std::ofstream out(file, std::ios::binary);
  out << kTermsTemplate;
  out.close();
  if (!out) return Fail("cannot write '" + file + "'");
  std::cout << "wrote " << file << ": edit it, then `assent terms lint " << file << "`\n";
  return 0;
}

struct TestCommand {
  std::vector<std::string> cases;  // files or directories of *.test
  std::vector<std::string> terms;  // published before each case
  bool through_ledger = false;
};

// The `opa test` of Assent: decision cases (docs/formats/cases.md) run against your terms;
// each failure with its file and line. Exit 0 when all pass, 1 when one fails, 2 for errors.
int TestCases(const TestCommand& o) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& c : o.cases) {
    std::error_code ec;
    if (fs::is_directory(c, ec)) {
      for (const auto& e : fs::directory_iterator(c, ec)) {
        if (e.path().extension() == ".test") files.push_back(e.path().string());
      }
    } else if (fs::exists(c, ec)) {
      files.push_back(c);
    } else {
      return Fail("no case file or directory '" + c + "'");
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return Fail("no *.test files in " + o.cases.front());
  size_t failed = 0;
  for (const auto& f : files) {
    CaseOptions options;
    options.terms = o.terms;
    options.through_ledger = o.through_ledger;
    const CaseResult r = RunCase(f, options);
    std::cout << (r.passed() ? "PASS " : "FAIL ") << f << (r.name.empty() ? "" : " — " + r.name)
              << "\n";
    for (const auto& x : r.failures) std::cout << "  " << f << ":" << x.line << ": " << x.message << "\n";
    failed += !r.passed();
  }
  std::cout << files.size() - failed << " passed, " << failed << " failed\n";
  return failed ? 1 : 0;
}

struct NoticeCommand {
  std::string file, rule, locale = std::string(kTermsLocale);
  std::string data = "./assent-data", version;  // without FILE: the published terms
  bool json = false, sha256 = false;
};

// The terms a notice is read from: FILE, or the version published in the ledger (--version,
// else the one in effect now).
Result<std::shared_ptr<const Terms>> NoticeTerms(const NoticeCommand& o, int* code) {
  if (!o.file.empty()) {
    auto t = LoadForReading(o.file, code);
    if (!t) return std::unexpected(Error{ErrorCode::kInvalidArgument, ""});
    return t;
  }
  if (!std::filesystem::exists(o.data + "/ledger.db") && Globals().database.empty()) {
    return NotFoundError("no terms file given and no ledger in '" + o.data +
                         "': give FILE, or --data DIR of a ledger with published terms");
  }
  ASSENT_ASSIGN_OR_RETURN(auto ledger, OpenLedger(o.data, true));
  auto snap = ledger->engine().snapshot();
  const TermsSet& ts = snap->terms();
  const int32_t v = o.version.empty() ? ts.VersionAt(ledger->engine().Now()) : ts.FindVersion(o.version);
  if (v < 0) {
    return NotFoundError(o.version.empty() ? "no terms are in effect in the ledger"
                                           : "no terms version '" + o.version + "' in the ledger");
  }
  return ts.version_ptr(v);
}

// The notice a rule shows, exactly as a consent event's hash covers it: text to standard
// output (so `| sha256sum` recomputes a receipt's hash), or only the hash, or both as JSON.
int Notice(const NoticeCommand& o) {
  int code = 2;
  auto loaded = NoticeTerms(o, &code);
  if (!loaded) return loaded.error().message.empty() ? code : Fail(loaded.error());
  const auto& terms = *loaded;
  const std::string where = o.file.empty() ? terms->label() : o.file;
  const int32_t r = terms->FindRule(o.rule);
  if (r < 0) {
    std::vector<std::string> ids;
    for (const auto& rule : terms->rules()) ids.push_back(rule.id);
    return Fail("no rule '" + o.rule + "' in " + where + DidYouMeanSuffix(o.rule, ids));
  }
  auto text = NoticeText(*terms, terms->rules()[r], o.locale);
  if (!text) {
    return Fail("terms " + terms->label() + " have no text in locale '" + o.locale +
                "' (they offer: " + Join(NoticeLocales(*terms), ", ") + ")");
  }
  const std::string sha = NoticeSha256(*text);
  if (o.json) {
    JsonWriter w;
    w.BeginObject().Key("terms").String(terms->label()).Key("rule").String(o.rule);
    w.Key("locale").String(o.locale).Key("sha256").String(sha).Key("text").String(*text);
    std::cout << w.EndObject().Take() << "\n";
  } else if (o.sha256) {
    std::cout << sha << "\n";
  } else {
    // The text alone on standard output (`| sha256sum` recomputes the hash); the hash beside
    // it on standard error.
    std::cout << *text;
    std::cout.flush();
    std::cerr << "sha256 " << sha << "  (" << terms->label() << ", rule " << o.rule << ", "
              << o.locale << ")\n";
  }
  return 0;
}

}  // namespace

void RegisterTermsCommands(CLI::App& app, int* exit_code) {
  CLI::App* terms = app.add_subcommand("terms", "Lint, show and compare terms documents");
  terms->require_subcommand(1);
  auto l = std::make_shared<TermsCommand>();
  auto* lint = terms->add_subcommand(
      "lint", "Check terms files; exit 0 without errors, 1 with any error, 2 if unreadable");
  lint->add_option("FILE", l->files, "Terms YAML files")->required();
  lint->add_flag("--json", l->json, "Print diagnostics as JSON");
  lint->callback([l, exit_code] { *exit_code = Lint(*l); });
  auto s = std::make_shared<TermsCommand>();
  auto* show = terms->add_subcommand(
      "show", "Print the leaf matrix: each (category, purpose) with its basis and rule");
  show->add_option("FILE", s->file, "Terms YAML file")->required();
  show->add_flag("--json", s->json, "Print as JSON");
  show->add_option("--locale", s->locale,
                   "Also print every text (rule summaries, descriptions, clauses) in this language");
  show->callback([s, exit_code] { *exit_code = Show(*s); });
  auto d = std::make_shared<TermsCommand>();
  auto* diff = terms->add_subcommand(
      "diff", "Compare two versions; exit 0 when nothing loosened, 1 when something did");
  diff->add_option("OLD", d->old_file, "The earlier terms file")->required();
  diff->add_option("NEW", d->new_file, "The later terms file")->required();
  diff->add_flag("--json", d->json, "Print as JSON");
  diff->callback([d, exit_code] { *exit_code = Diff(*d); });
  auto init_file = std::make_shared<std::string>();
  auto* init = terms->add_subcommand(
      "init", "Write a commented starting terms file that lints clean (e.g. terms init my-terms.yaml)");
  init->add_option("FILE", *init_file, "The file to create")->required();
  init->callback([init_file, exit_code] { *exit_code = Init(*init_file); });
  auto n = std::make_shared<NoticeCommand>();
  auto* notice = terms->add_subcommand(
      "notice", "Print the exact notice a rule shows (summary, categories, purposes, clauses), "
                "whose SHA-256 consent events and receipts record");
  notice->add_option("FILE", n->file,
                     "Terms YAML file (default: the terms published in --data DIR or --database)");
  AddDataOption(notice, &n->data);
  notice->add_option("--version", n->version,
                     "Without FILE: this published version (default: the one in effect now)");
  notice->add_option("--rule", n->rule, "The rule")->required();
  notice->add_option("--locale", n->locale, "The language (BCP 47)")->capture_default_str();
  notice->add_flag("--sha256", n->sha256, "Print only the hash (hex)");
  notice->add_flag("--json", n->json, "Print {terms, rule, locale, sha256, text}");
  notice->callback([n, exit_code] { *exit_code = Notice(*n); });
  auto t = std::make_shared<TestCommand>();
  auto* test = terms->add_subcommand(
      "test", "Run decision cases (the test/cases format) against terms: exit 0 all pass, 1 a "
              "failure, 2 an error. Example: assent terms test --terms my-terms.yaml cases/");
  test->add_option("CASES", t->cases, "Case files, or directories of *.test")->required();
  test->add_option("--terms", t->terms,
                   "Terms files published before each case's own directives (repeatable)");
  test->add_flag("--through-ledger", t->through_ledger,
                 "Run each case through a ledger (its defaults) rather than the engine alone");
  test->callback([t, exit_code] { *exit_code = TestCases(*t); });
}

}  // namespace assent::cli
