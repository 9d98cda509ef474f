// Reading Python columns — lists, tuples, NumPy object arrays, pandas Series turned into
// arrays by the package — without copying their strings: a str's UTF-8 bytes are borrowed
// from the object (the column keeps it alive), and rows become manifest lines for the gate.
// Every function here needs the GIL.
#ifndef ASSENT_PYTHON_COLUMNS_H_
#define ASSENT_PYTHON_COLUMNS_H_

#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "assent/result.h"

namespace assent::python {

namespace py = pybind11;

// One column of values, or one value for every row ("broadcast").
class Column {
 public:
  // `name` names the column in errors. A str (or None, when `may_broadcast_none`) is one value
  // for every row; anything else must be a sequence of `rows` values (`rows` 0: take its
  // length).
  static Result<Column> Of(py::handle values, std::string name, size_t rows);
  size_t size() const { return size_; }
  bool broadcast() const { return broadcast_; }
  // The value of row `i` (borrowed).
  PyObject* at(size_t i) const { return broadcast_ ? one_ : items_[i]; }
  const std::string& name() const { return name_; }

 private:
  py::object keep_;          // what keeps `items_` alive (the list, array or fast sequence)
  PyObject* const* items_ = nullptr;
  PyObject* one_ = nullptr;  // the broadcast value
  size_t size_ = 0;
  bool broadcast_ = false;
  std::string name_;
};

// Whether a value stands for "nothing": None, or a float NaN (pandas' missing value).
bool IsMissing(PyObject* v);

// A str's UTF-8 bytes, or an int's decimal text (into `scratch`, ids only); kInvalidArgument
// naming the row and column otherwise.
Result<std::string_view> IdText(PyObject* v, const Column& col, size_t row, std::string* scratch);

// The subjects of one row: None or NaN (none), a str (one), or a sequence of ids.
Status AppendSubjects(PyObject* v, const Column& col, size_t row,
                      std::vector<std::string_view>* out, std::vector<std::string>* scratch);

// Rows as manifest lines ({"id":..,"category":..,"subjects":[..],"account":..,<signals>}), so the
// gate's reader decides what is malformed exactly as it does for a file. Missing values leave
// their field out; ints in id, account and subjects are read as their decimal text (a
// category must be a str, as in a file).
struct RowColumns {
  const Column* ids = nullptr;
  const Column* categories = nullptr;
  const Column* subjects = nullptr;  // may be null
  const Column* accounts = nullptr;  // may be null
  std::vector<std::pair<std::string, const Column*>> signals;  // field name, column
};
Result<std::string> ManifestLines(const RowColumns& c, size_t rows);

}  // namespace assent::python

#endif  // ASSENT_PYTHON_COLUMNS_H_
