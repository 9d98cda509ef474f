// assent._core: the C++ engine and gate for Python (docs/python.md). Everything that decides
// runs here, in the same code as the CLI and the server; the package's Python files only
// adapt DataFrames, datetimes and engines around it. Long calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "assent/engine.h"
#include "assent/ledger.h"
#include "common/strings.h"
#include "filter/filter.h"
#include "filter/snapshot.h"
#include "python/columns.h"

namespace assent::python {
namespace {

// assent.Error and one subclass per code, created at import.
struct Exceptions {
  PyObject* base = nullptr;
  PyObject* by_code[16] = {};
};
Exceptions& Errors() {
  static Exceptions e;
  return e;
}

[[noreturn]] void Raise(const Error& e) {
  const auto code = static_cast<size_t>(e.code);
  PyObject* type = code < 16 && Errors().by_code[code] ? Errors().by_code[code] : Errors().base;
  PyErr_SetString(type, e.message.c_str());
  throw py::error_already_set();
}

template <typename T>
T Take(Result<T> r) {
  if (!r) Raise(r.error());
  return std::move(*r);
}
void Check(const Status& s) {
  if (!s) Raise(s.error());
}

std::optional<Timestamp> ParseAt(const std::optional<std::string>& at) {
  if (!at) return std::nullopt;
  auto t = ParseTime(*at);
  if (!t) Raise({ErrorCode::kInvalidArgument, "at: " + t.error().message});
  return *t;
}

// The gate's message for a manifest line, said of a DataFrame row: "row 4: ..." and the
// Python spelling of the option.
Error ForRows(Error e, const std::string& label) {
  std::string& m = e.message;
  if (m.starts_with(label + ":")) {
    const size_t colon = m.find(':', label.size() + 1);
    if (colon != std::string::npos) {
      const std::string line = m.substr(label.size() + 1, colon - label.size() - 1);
      char* end = nullptr;
      const unsigned long long n = std::strtoull(line.c_str(), &end, 10);
      if (end && *end == '\0' && n > 0) m = "row " + std::to_string(n - 1) + m.substr(colon);
    }
  }
  for (size_t at; (at = m.find("--skip-malformed")) != std::string::npos;) {
    m.replace(at, 16, "skip_malformed=True");
  }
  return e;
}

// A decision source: a snapshot file or a read-only ledger, pinned at one state.
class Decider {
 public:
  virtual ~Decider() = default;

  std::shared_ptr<const Snapshot> snap() const { return snap_; }
  Timestamp Now() const { return SystemClock()(); }

  std::string DecideJson(const std::string& category, const std::string& purpose,
                         const std::vector<std::string>& subjects,
                         const std::optional<std::string>& account,
                         const std::optional<std::string>& at) const {
    std::vector<std::string_view> views(subjects.begin(), subjects.end());
    DecisionRequest q;
    q.category = category;
    q.purpose = purpose;
    q.subjects = views;
    if (account) q.account = *account;
    q.at = ParseAt(at);
    auto snap = snap_;
    auto d = Take(snap->Decide(q, Now()));
    return DecisionToJson(d);
  }

  py::tuple DecideMany(const std::string& purpose, py::handle categories, py::handle subjects,
                       py::handle accounts, const std::optional<std::string>& at,
                       const std::string& errors) const;
  double BenchDecideBatch(const std::string& purpose, py::handle categories,
                          py::handle subjects, int repeat) const;
  py::tuple FilterRows(const std::string& purpose, py::handle ids, py::handle categories,
                       py::handle subjects, py::handle accounts, py::dict signals,
                       const std::optional<std::string>& at, bool skip_malformed,
                       int threads) const;
  std::string FilterFile(const std::string& purpose, const std::string& in,
                         const std::string& out, const std::string& report,
                         const std::optional<std::string>& at, bool skip_malformed, int threads,
                         const std::map<std::string, std::string>& fields) const;

  // The category or purpose names of the terms in effect at `at` (default now).
  std::vector<std::string> Names(bool categories, const std::optional<std::string>& at) const {
    const Timestamp t = ParseAt(at).value_or(Now());
    const int32_t v = snap_->terms().VersionAt(t);
    if (v < 0) Raise({ErrorCode::kFailedPrecondition, "no terms are in effect at " + FormatTime(t)});
    const Terms& terms = snap_->terms().version(v);
    std::vector<std::string> out;
    for (const auto& n : categories ? terms.categories() : terms.purposes()) out.push_back(n.name);
    return out;
  }

  uint64_t position() const { return snap_->position(); }
  uint64_t events() const { return snap_->consent_events(); }
  uint64_t parties() const { return snap_->parties(); }
  std::vector<std::string> terms() const {
    std::vector<std::string> out;
    for (int32_t v = 0; v < snap_->terms().size(); ++v) out.push_back(snap_->terms().version(v).label());
    return out;
  }

 protected:
  std::shared_ptr<const Snapshot> snap_;
};

class SnapshotFile : public Decider {
 public:
  explicit SnapshotFile(const std::string& path) : path_(path) {
    Result<std::unique_ptr<Engine>> loaded;
    {
      py::gil_scoped_release unlocked;  // (errors are raised with the GIL held, below)
      loaded = LoadSnapshot(path, &info_);
    }
    engine_ = Take(std::move(loaded));
    snap_ = engine_->snapshot();
  }
  const std::string& path() const { return path_; }
  const std::string& sha256() const { return info_.sha256; }
  const std::string& ledger() const { return info_.ledger; }

 private:
  std::string path_;
  SnapshotInfo info_;
  std::unique_ptr<Engine> engine_;
};

class LedgerView : public Decider {
 public:
  LedgerView(const std::string& data_dir, const std::string& database)
      : data_dir_(data_dir), database_(database) {
    Refresh();
  }
  // Opens the ledger again at its head (what was appended since shows).
  void Refresh() {
    if (database_.empty() && !std::filesystem::exists(data_dir_ + "/ledger.db")) {
      Raise({ErrorCode::kNotFound, "no ledger in '" + data_dir_ + "' (a data directory holds "
                                   "ledger.db; give the one assent serve or the CLI use)"});
    }
    LedgerOptions o;
    o.data_dir = data_dir_;
    o.database = database_;
    o.read_only = true;
    std::unique_ptr<Ledger> ledger;
    Result<std::unique_ptr<Ledger>> opened;
    {
      py::gil_scoped_release unlocked;  // (errors are raised with the GIL held, below)
      opened = Ledger::Open(o);
    }
    ledger = Take(std::move(opened));
    snap_ = ledger->engine().snapshot();
    ledger_ = std::move(ledger);
  }
  const std::string& data_dir() const { return data_dir_; }

 private:
  std::string data_dir_, database_;
  std::unique_ptr<Ledger> ledger_;
};

// ---- decide_many ----

constexpr size_t kChunk = 1 << 16;  // rows decided per step: bounds the memory beside the input

// The questions of rows [begin, end), as views into the Python objects.
struct ChunkRequests {
  std::vector<DecisionRequest> requests;
  std::vector<std::string_view> subjects;
  std::vector<std::pair<uint32_t, uint32_t>> ranges;  // per row, into `subjects`
  std::deque<std::string> scratch;                    // ints read as text
  std::vector<std::string> scratch_strings;
};

Status FillChunk(const Column& cats, const Column* subs, const Column* accts,
                 const std::string& purpose, std::optional<Timestamp> at, size_t begin,
                 size_t end, ChunkRequests* c) {
  c->requests.resize(end - begin);
  c->subjects.clear();
  c->ranges.resize(end - begin);
  c->scratch.clear();
  std::string text;
  for (size_t row = begin; row < end; ++row) {
    DecisionRequest& q = c->requests[row - begin];
    q = DecisionRequest{};
    ASSENT_ASSIGN_OR_RETURN(q.category, IdText(cats.at(row), cats, row, &text));
    if (!text.empty()) q.category = c->scratch.emplace_back(std::move(text));
    text.clear();
    q.purpose = purpose;
    q.at = at;
    const auto first = static_cast<uint32_t>(c->subjects.size());
    if (subs) {
      c->scratch_strings.clear();
      ASSENT_RETURN_IF_ERROR(AppendSubjects(subs->at(row), *subs, row, &c->subjects, &c->scratch_strings));
      // Converted ints: moved into the stable deque, the views re-pointed.
      for (size_t k = 0; k < c->scratch_strings.size(); ++k) {
        const std::string& s = c->scratch.emplace_back(std::move(c->scratch_strings[k]));
        c->subjects[c->subjects.size() - c->scratch_strings.size() + k] = s;
      }
    }
    c->ranges[row - begin] = {first, static_cast<uint32_t>(c->subjects.size()) - first};
    if (accts && !IsMissing(accts->at(row))) {
      ASSENT_ASSIGN_OR_RETURN(auto a, IdText(accts->at(row), *accts, row, &text));
      q.account = text.empty() ? a : std::string_view(c->scratch.emplace_back(std::move(text)));
      text.clear();
    }
  }
  for (size_t i = 0; i < c->requests.size(); ++i) {
    c->requests[i].subjects = std::span<const std::string_view>(c->subjects.data() + c->ranges[i].first,
                                                                c->ranges[i].second);
  }
  return OkStatus();
}

size_t RowsOf(std::initializer_list<py::handle> columns) {
  for (py::handle h : columns) {
    if (h.is_none() || PyUnicode_Check(h.ptr())) continue;
    const Py_ssize_t n = PyObject_Length(h.ptr());
    if (n < 0) {
      PyErr_Clear();
      continue;  // Column::Of says what is wrong with it
    }
    return static_cast<size_t>(n);
  }
  return 0;
}

// Checks the terms in effect and the purpose once, before any row.
void CheckPurpose(const Snapshot& snap, const std::string& purpose, Timestamp t) {
  const int32_t v = snap.terms().VersionAt(t);
  if (v < 0) Raise({ErrorCode::kFailedPrecondition, "no terms are in effect at " + FormatTime(t)});
  const Terms& terms = snap.terms().version(v);
  if (terms.FindPurpose(purpose) < 0) {
    std::vector<std::string> names;
    for (const auto& p : terms.purposes()) names.push_back(p.name);
    Raise({ErrorCode::kInvalidArgument, "unknown purpose '" + purpose + "' in terms " +
                                            terms.label() + DidYouMeanSuffix(purpose, names)});
  }
}

py::tuple Decider::DecideMany(const std::string& purpose, py::handle categories,
                              py::handle subjects, py::handle accounts,
                              const std::optional<std::string>& at,
                              const std::string& errors) const {
  if (errors != "raise" && errors != "deny") {
    Raise({ErrorCode::kInvalidArgument, "errors must be 'raise' or 'deny', not '" + errors + "'"});
  }
  const std::optional<Timestamp> t = ParseAt(at);
  auto snap = snap_;
  const Timestamp now = Now();
  CheckPurpose(*snap, purpose, t.value_or(now));
  const size_t rows = RowsOf({categories, subjects, accounts});
  if (rows == 0 && PyUnicode_Check(categories.ptr()) && PyUnicode_Check(subjects.ptr())) {
    Raise({ErrorCode::kInvalidArgument, "give a column (a sequence) of categories, subjects or "
                                        "accounts: with only single values, use decide()"});
  }
  const Column cats = Take(Column::Of(categories, "categories", rows));
  std::optional<Column> subs, accts;
  if (!subjects.is_none()) subs = Take(Column::Of(subjects, "subjects", rows));
  if (!accounts.is_none()) accts = Take(Column::Of(accounts, "accounts", rows));

  py::array_t<bool> mask(static_cast<py::ssize_t>(rows));
  py::array reasons(py::dtype("O"), std::vector<py::ssize_t>{static_cast<py::ssize_t>(rows)});
  bool* allow = mask.mutable_data();
  auto** out = static_cast<PyObject**>(reasons.mutable_data());
  // One str per reason, shared by every row it answers.
  std::vector<py::str> names;
  for (int r = 0; r <= static_cast<int>(Reason::kErased); ++r) {
    names.emplace_back(std::string(ReasonName(static_cast<Reason>(r))));
  }
  const py::str unknown("unknown-category"), invalid("invalid-request");

  ChunkRequests chunk;
  std::vector<Result<Decision>> results;
  for (size_t begin = 0; begin < rows; begin += kChunk) {
    const size_t end = std::min(rows, begin + kChunk);
    Check(FillChunk(cats, subs ? &*subs : nullptr, accts ? &*accts : nullptr, purpose, t, begin,
                    end, &chunk));
    {
      py::gil_scoped_release unlocked;
      snap->DecideBatch(chunk.requests, now, &results, /*with_parties=*/false);
    }
    for (size_t i = 0; i < results.size(); ++i) {
      const size_t row = begin + i;
      PyObject* name;
      if (results[i]) {
        allow[row] = results[i]->allow;
        name = names[static_cast<size_t>(results[i]->reason)].ptr();
      } else {
        if (errors == "raise") {
          Raise({results[i].error().code, "row " + std::to_string(row) + ": " + results[i].error().message});
        }
        allow[row] = false;
        name = snap->terms().version(std::max(0, snap->terms().VersionAt(t.value_or(now))))
                           .FindCategory(chunk.requests[i].category) < 0
                   ? unknown.ptr()
                   : invalid.ptr();
      }
      Py_INCREF(name);
      Py_XDECREF(out[row]);
      out[row] = name;
    }
  }
  return py::make_tuple(mask, reasons);
}

double Decider::BenchDecideBatch(const std::string& purpose, py::handle categories,
                                 py::handle subjects, int repeat) const {
  const size_t rows = RowsOf({categories, subjects});
  const Column cats = Take(Column::Of(categories, "categories", rows));
  const Column subs = Take(Column::Of(subjects, "subjects", rows));
  // Reserved: a ChunkRequests is copied, not moved, when a vector grows (std::deque's move
  // may throw), and its requests point into its own vectors.
  std::vector<ChunkRequests> chunks;
  chunks.reserve((rows + kChunk - 1) / kChunk);
  for (size_t begin = 0; begin < rows; begin += kChunk) {
    Check(FillChunk(cats, &subs, nullptr, purpose, std::nullopt, begin,
                    std::min(rows, begin + kChunk), &chunks.emplace_back()));
  }
  auto snap = snap_;
  const Timestamp now = Now();
  py::gil_scoped_release unlocked;
  std::vector<Result<Decision>> results;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeat; ++r) {
    for (const auto& c : chunks) snap->DecideBatch(c.requests, now, &results, false);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- the gate ----

py::tuple Decider::FilterRows(const std::string& purpose, py::handle ids, py::handle categories,
                              py::handle subjects, py::handle accounts, py::dict signals,
                              const std::optional<std::string>& at, bool skip_malformed,
                              int threads) const {
  const size_t rows = RowsOf({ids});
  const Column id_col = Take(Column::Of(ids, "id", rows));
  const Column cat_col = Take(Column::Of(categories, "category", rows));
  std::optional<Column> sub_col, acct_col;
  if (!subjects.is_none()) sub_col = Take(Column::Of(subjects, "subjects", rows));
  if (!accounts.is_none()) acct_col = Take(Column::Of(accounts, "account", rows));
  std::deque<Column> signal_cols;
  RowColumns c;
  c.ids = &id_col;
  c.categories = &cat_col;
  c.subjects = sub_col ? &*sub_col : nullptr;
  c.accounts = acct_col ? &*acct_col : nullptr;
  for (auto [field, values] : signals) {
    const std::string name = py::cast<std::string>(field);
    c.signals.emplace_back(name, &signal_cols.emplace_back(Take(Column::Of(values, name, rows))));
  }
  std::string lines = Take(ManifestLines(c, rows));
  FilterOptions o;
  o.purpose = purpose;
  o.at = ParseAt(at);
  o.skip_malformed = skip_malformed;
  o.threads = std::max(1, threads);
  o.in_path = "rows";
  std::vector<uint8_t> kept;
  o.kept_lines = &kept;
  auto snap = snap_;
  Result<FilterReport> report;
  {
    py::gil_scoped_release unlocked;
    report = FilterBuffer(*snap, Now(), o, lines);
  }
  if (!report) Raise(ForRows(report.error(), o.in_path));
  if (kept.size() != rows) Raise({ErrorCode::kInternal, "the gate answered for " +
                                  std::to_string(kept.size()) + " of " + std::to_string(rows) + " rows"});
  py::array_t<bool> mask(static_cast<py::ssize_t>(rows));
  std::copy(kept.begin(), kept.end(), mask.mutable_data());
  return py::make_tuple(mask, report->ToJson());
}

std::string Decider::FilterFile(const std::string& purpose, const std::string& in,
                                const std::string& out, const std::string& report_path,
                                const std::optional<std::string>& at, bool skip_malformed,
                                int threads, const std::map<std::string, std::string>& fields) const {
  FilterOptions o;
  o.purpose = purpose;
  o.in_path = in;
  o.out_path = out;
  o.report_path = report_path;
  o.at = ParseAt(at);
  o.skip_malformed = skip_malformed;
  o.threads = std::max(1, threads);
  for (const auto& [k, v] : fields) {
    std::string* field = k == "id"             ? &o.id_field
                         : k == "category"      ? &o.category_field
                         : k == "subjects"      ? &o.subjects_field
                         : k == "account"       ? &o.account_field
                         : k == "content_usage" ? &o.content_usage_field
                         : k == "content_signal" ? &o.content_signal_field
                         : k == "tdm_reservation" ? &o.tdm_field
                         : k == "c2pa_training" ? &o.c2pa_field
                                                : nullptr;
    if (!field) {
      Raise({ErrorCode::kInvalidArgument, "unknown field '" + k + "' (id, category, subjects, "
                                          "account, content_usage, content_signal, "
                                          "tdm_reservation, c2pa_training)"});
    }
    *field = v;
  }
  auto snap = snap_;
  Result<FilterReport> report;
  {
    py::gil_scoped_release unlocked;
    report = RunFilter(*snap, Now(), o);
  }
  if (!report) {
    Error e = report.error();
    for (size_t p; (p = e.message.find("--skip-malformed")) != std::string::npos;) {
      e.message.replace(p, 16, "skip_malformed=True");
    }
    Raise(e);
  }
  return report->ToJson();
}

void RegisterErrors(py::module_& m) {
  Exceptions& e = Errors();
  e.base = PyErr_NewExceptionWithDoc(
      "assent.Error", "An Assent call could not be carried out; `code` says why (the CLI's "
      "exit-2 errors, by code).", PyExc_Exception, nullptr);
  m.add_object("Error", py::handle(e.base));
  struct Sub {
    ErrorCode code;
    const char* name;
    PyObject* also;  // a built-in it also is, or null
  };
  const Sub subs[] = {
      {ErrorCode::kInvalidArgument, "InvalidArgument", PyExc_ValueError},
      {ErrorCode::kNotFound, "NotFound", nullptr},
      {ErrorCode::kAlreadyExists, "AlreadyExists", nullptr},
      {ErrorCode::kFailedPrecondition, "FailedPrecondition", nullptr},
      {ErrorCode::kPermissionDenied, "PermissionDenied", nullptr},
      {ErrorCode::kUnavailable, "Unavailable", nullptr},
      {ErrorCode::kDataLoss, "DataLoss", nullptr},
      {ErrorCode::kInternal, "Internal", nullptr},
      {ErrorCode::kGone, "Gone", nullptr},
  };
  py::setattr(py::handle(e.base), "code", py::none());
  for (const Sub& s : subs) {
    py::object bases = s.also ? py::make_tuple(py::handle(e.base), py::handle(s.also))
                              : py::make_tuple(py::handle(e.base));
    PyObject* type = PyErr_NewException((std::string("assent.") + s.name).c_str(), bases.ptr(), nullptr);
    py::setattr(py::handle(type), "code", py::str(std::string(ErrorCodeName(s.code))));
    e.by_code[static_cast<size_t>(s.code)] = type;
    m.add_object(s.name, py::handle(type));
  }
}

}  // namespace
}  // namespace assent::python

PYBIND11_MODULE(_core, m) {
  using namespace assent::python;
  m.doc() = "Assent's C++ engine and training-data gate (use the assent package, not this)";
  RegisterErrors(m);
  py::class_<Decider>(m, "_Decider")
      .def("_decide", &Decider::DecideJson, py::arg("category"), py::arg("purpose"),
           py::arg("subjects"), py::arg("account"), py::arg("at"))
      .def("_decide_many", &Decider::DecideMany, py::arg("purpose"), py::arg("categories"),
           py::arg("subjects"), py::arg("accounts"), py::arg("at"), py::arg("errors"))
      .def("_bench_decide_batch", &Decider::BenchDecideBatch)
      .def("_filter_rows", &Decider::FilterRows)
      .def("_filter_file", &Decider::FilterFile)
      .def("categories", [](const Decider& d, const std::optional<std::string>& at) { return d.Names(true, at); },
           py::arg("at") = py::none(),
           "The category names of the terms in effect at `at` (RFC 3339; default now), parents first")
      .def("purposes", [](const Decider& d, const std::optional<std::string>& at) { return d.Names(false, at); },
           py::arg("at") = py::none(),
           "The purpose names of the terms in effect at `at` (RFC 3339; default now), parents first")
      .def_property_readonly("position", &Decider::position,
                             "The ledger position the decisions reflect")
      .def_property_readonly("events", &Decider::events, "Consent events folded in")
      .def_property_readonly("parties", &Decider::parties, "Parties with consent events")
      .def_property_readonly("terms", &Decider::terms, "Terms versions, oldest first (id@version)");
  py::class_<SnapshotFile, Decider>(m, "_Snapshot")
      .def(py::init<const std::string&>(), py::arg("path"))
      .def_property_readonly("path", &SnapshotFile::path)
      .def_property_readonly("sha256", &SnapshotFile::sha256,
                             "SHA-256 of the snapshot's content (what a dataset records)")
      .def_property_readonly("ledger", &SnapshotFile::ledger,
                             "Hash of the first entry of the ledger it was made from");
  py::class_<LedgerView, Decider>(m, "_Ledger")
      .def(py::init<const std::string&, const std::string&>(), py::arg("data_dir"),
           py::arg("database") = "")
      .def("refresh", &LedgerView::Refresh,
           "Reads the ledger again at its head: what was appended since shows (ledger.refresh())")
      .def_property_readonly("data_dir", &LedgerView::data_dir);
}
